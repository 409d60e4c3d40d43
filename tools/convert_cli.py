"""`appliance-convert`: the converter's command line (see tools/convert.py for the pipeline)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance import tasks
from tools.errors import ConvertError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance-convert",
        description="Turn a float model into a verified bundle: INT8 where it is faster and "
                    "within the accuracy gate, float otherwise.")
    parser.add_argument("model", help="an .onnx file, or module:factory for a PyTorch model")
    parser.add_argument("--images", required=True, help="folder of calibration photos")
    parser.add_argument("--held-out", help="folder of held-out photos (default: every 4th "
                        "image of --images is held out)")
    parser.add_argument("--manifest", help="a starting manifest.json (input, output, "
                        "attribution); flags below override it")
    parser.add_argument("--name", help="bundle name")
    parser.add_argument("--task", choices=tasks.NAMES,
                        help="; ".join(f"{t.name}: {t.summary}" for t in tasks.all_tasks()))
    parser.add_argument("--labels", help="labels file, one per line (classify)")
    parser.add_argument("--out", default="models", help="the models folder (default: models)")
    _preprocessing(parser)
    _attribution(parser)
    parser.add_argument("--target", default="auto",
                        choices=("auto", "arm64", "x86-vnni", "x86", "tensorrt"),
                        help="the board the bundle is for (default: this machine)")
    parser.add_argument("--gate", action="append", default=[], metavar="KEY=VALUE",
                        help="accuracy gate override, e.g. top1_agreement=0.95")
    parser.add_argument("--max-fallbacks", type=int, default=3,
                        help="rounds of excluding sensitive nodes when the gate fails")
    parser.add_argument("--input-shape", help="example input shape for PyTorch, e.g. "
                        "1,3,224,224")
    parser.add_argument("--keep-float", help="also keep the float source ONNX here")
    parser.add_argument("--export-triton", help="also write a Triton model repository here")
    return parser


def _preprocessing(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("preprocessing (the manifest's input)")
    group.add_argument("--input-name", help="the model's input tensor name")
    group.add_argument("--size", help="H,W or one number for a square input")
    group.add_argument("--resize", choices=("stretch", "shorter-side-center-crop", "letterbox"))
    group.add_argument("--layout", choices=("NCHW", "NHWC"))
    group.add_argument("--color", choices=("RGB", "BGR"))
    group.add_argument("--scale", type=float, help="pixels are multiplied by this first")
    group.add_argument("--mean", help="three numbers subtracted after scaling")
    group.add_argument("--std", help="three numbers divided by last")
    group.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--output", action="append", default=[], metavar="KEY=VALUE",
                       help="the manifest's output settings, e.g. dim=1280 (JSON values)")


def _attribution(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("attribution (shown with every result)")
    for flag in ("author", "source", "license", "description", "version"):
        group.add_argument(f"--{flag}")


def manifest_from(args: argparse.Namespace) -> dict[str, Any]:
    """The starting manifest with the flags applied. Raises ConvertError on bad values."""
    data = _read_json(args.manifest) if args.manifest else {}
    for key in ("name", "task", "description", "version"):
        if getattr(args, key):
            data[key] = getattr(args, key)
    data.setdefault("version", "1.0.0")
    attribution = data.setdefault("attribution", {})
    for key in ("author", "source", "license"):
        if getattr(args, key):
            attribution[key] = getattr(args, key)
    data["input"] = {**data.get("input", {}), **_input_flags(args)}
    data["output"] = {**data.get("output", {}), **_pairs(args.output, "--output", json_values=True)}
    missing = [k for k in ("name", "task") if not data.get(k)]
    if missing:
        raise ConvertError(f"--{missing[0]} is required (or give it in --manifest)")
    return data


def _input_flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if args.size:
        sides = _numbers(args.size, "--size", int)
        flags["size"] = sides * 2 if len(sides) == 1 else sides
    for key in ("resize", "layout", "color", "scale"):
        if getattr(args, key) is not None:
            flags[key] = getattr(args, key)
    if args.input_name:
        flags["name"] = args.input_name
    for key in ("mean", "std"):
        if getattr(args, key):
            flags[key] = _numbers(getattr(args, key), f"--{key}", float)
    if args.dynamic_batch is not None:
        flags["dynamic_batch"] = args.dynamic_batch
    return flags


def _numbers(text: str, flag: str, kind: type) -> list:
    try:
        return [kind(v) for v in text.split(",")]
    except ValueError:
        raise ConvertError(f"{flag} {text!r}: give comma-separated numbers") from None


def _pairs(items: list[str], flag: str, json_values: bool = False) -> dict[str, Any]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConvertError(f"{flag} {item!r}: use KEY=VALUE")
        if json_values:
            try:
                pairs[key] = json.loads(value)
            except json.JSONDecodeError:
                pairs[key] = value
        else:
            pairs[key] = value
    return pairs


def _read_json(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConvertError(f"--manifest {path}: {exc}") from None


def _labels(path: str | None) -> list[str] | None:
    if not path:
        return None
    try:
        # Newlines only, as the box reads a labels file (str.splitlines splits on more).
        return [line.removesuffix("\r") for line in
                Path(path).read_text(encoding="utf-8").removesuffix("\n").split("\n")]
    except OSError as exc:
        raise ConvertError(f"--labels {path}: {exc.strerror}") from None


def options_from(args: argparse.Namespace):
    from tools import calibration
    from tools.convert import Options, single_graph

    manifest = manifest_from(args)
    single_graph(manifest["task"])  # before any image is read
    return Options(
        source=args.model, manifest=manifest, images=calibration.read_folder(args.images),
        held_out=calibration.read_folder(args.held_out) if args.held_out else None,
        out=Path(args.out), labels=_labels(args.labels), target=args.target,
        gate={k: float(v) for k, v in _pairs(args.gate, "--gate").items()},
        max_fallbacks=args.max_fallbacks,
        input_shape=tuple(_numbers(args.input_shape, "--input-shape", int))
        if args.input_shape else None,
        keep_float=Path(args.keep_float) if args.keep_float else None,
        export_triton=Path(args.export_triton) if args.export_triton else None)


def main(argv: list[str] | None = None) -> int:
    """Run the converter; exit code 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    from tools.convert import convert

    try:
        convert(options_from(args))
    except ConvertError as exc:
        print(f"appliance-convert: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # e.g. a --gate value that is not a number
        print(f"appliance-convert: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not this folder: see convert.py
    sys.exit(main())
