"""The appliance against bare onnxruntime, a do-nothing web app, a naive server and the model
servers a user would pick instead: one command, one run, one machine, the same model and
the same photos.

    python tools/bench/servers.py [--model models/efficientnet-lite0] [--seconds 5]
        [--servers appliance,floor,naive,mlserver,bentoml,kserve] [--concurrency 1,4,16]
        [--images small,phone] [--variant NAME:KEY=VALUE,...] [--out bench-out]
        [--compat models/objects] [--compat-requests 300] [--rounds 5] [--round-seconds 3]

With --compat (the default bundle `objects` by default), also DeepStack's detection route
with Frigate's 320x320 JPEG and Frigate's zmq detector (tensor in, tensor out), each against
bare onnxruntime on the same model (tools/bench/compat.py). With --rounds (5 by default),
also the c=1 overhead and the share of the bare limit taken within alternating rounds, so
that a busy minute on a shared machine moves both sides of each ratio (tools/bench/paired.py).

Writes OUT/bench.json, OUT/bench.md (the tables the README carries) and OUT/bench.svg.
MLServer, BentoML and KServe run from virtualenvs of their own under .bench/venvs/, built
on first use. Everything listens on 127.0.0.1; each cell runs for a fixed time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

from tools.bench import bare as bench_bare
from tools.bench import compat as bench_compat
from tools.bench import contenders as bench_contenders
from tools.bench import paired as bench_paired
from tools.bench import report as bench_report
from tools.bench.client import PeakMemory, closed_loop, percentiles
from tools.live_server import LiveServer, post_image

ROOT = Path(__file__).resolve().parents[2]
THREE_DEFAULTS = ("efficientnet-lite0", "lite0-embed", "sketch")


def photos() -> dict[str, dict]:
    """A small photo (512x600) and a phone-sized one (4000x3000, 12 MP), as JPEG bytes.

    Made from scikit-image's photographs; the phone photo gets sensor-like noise so it
    compresses like a real one.
    """
    import numpy as np
    from PIL import Image
    from skimage import data

    small = Image.fromarray(data.astronaut()).resize((512, 600), Image.LANCZOS)
    phone = Image.fromarray(data.coffee()).resize((4000, 3000), Image.BICUBIC)
    noise = np.random.default_rng(7).normal(0, 4, (3000, 4000, 3))
    phone = Image.fromarray(np.clip(np.asarray(phone) + noise, 0, 255).astype(np.uint8))
    out = {}
    for key, label, image in (("small", "small photo", small), ("phone", "phone photo", phone)):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out[key] = {"label": label, "width": image.width, "height": image.height,
                    "jpeg": buffer.getvalue()}
    return out


def measure_bare(model: Path, photo: bytes, seconds: float) -> dict:
    samples = bench_bare.latency(model, photo, seconds)
    return {"latency": {**percentiles(samples), "n": len(samples),
                        "throughput_rps": 1000 / statistics.mean(samples)},
            "limit": bench_bare.limit(model, photo, seconds)}


def measure_server(contender, model: Path, images: dict, expected: dict, conc: list[int],
                   seconds: float, warmup: float, workdir: Path) -> dict:
    """Start one server, check its answers, load it at each concurrency, stop it."""
    first = next(iter(images.values()))["jpeg"]
    entry = {"name": contender.name, "kind": contender.kind, "runs": {}}
    try:
        running = bench_contenders.start_answering(contender, model, workdir, first)
    except bench_contenders.Unavailable as exc:
        entry["skipped"] = str(exc)
        print(f"  skipped: {exc}", file=sys.stderr)
        return entry
    try:
        for key, info in images.items():
            request = running.request_for(info["jpeg"])
            check = closed_loop(running.port, request, 1, 0.0, 0.0, max_requests=1)
            if contender.kind != "floor" and expected[key].encode() not in check.first_body:
                raise RuntimeError(f"{contender.name} answered {check.first_body[:300]!r}, "
                                   f"without the label bare onnxruntime gives: "
                                   f"{expected[key]!r}")
            entry["runs"][key] = {}
            for c in conc:
                with PeakMemory(running.process.pid) as memory:
                    result = closed_loop(running.port, request, c, seconds, warmup)
                entry["runs"][key][str(c)] = {**result.summary(),
                                              "peak_rss_mb": memory.peak_mb}
                print(f"  {key} c={c}: {entry['runs'][key][str(c)]['throughput_rps']:.1f} "
                      f"req/s, p50 {entry['runs'][key][str(c)]['p50_ms']:.1f} ms",
                      file=sys.stderr)
    finally:
        running.stop()
    return entry


def measure_memory(models_dir: Path, names: tuple[str, ...], photo: bytes) -> dict | None:
    """Start to ready and resident memory of `appliance serve` with the named bundles,
    after one request to each. None when a bundle is not built."""
    if not all((models_dir / n / "manifest.json").exists() for n in names):
        return None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "models"
        folder.mkdir()
        for name in names:
            shutil.copytree(models_dir / name, folder / name)
        server = LiveServer(folder, Path(scratch) / "state",
                            env={"APPLIANCE_AUTH_RATE_PER_MINUTE": "0"})
        try:
            server.wait_ready(120)
            ready_s = time.monotonic() - server.started
            for name in names:
                post_image(f"{server.url}/v1/models/{name}/infer", photo)
            rss = server.rss_mb()
        finally:
            server.stop()
    return {"models": list(names), "ready_s": ready_s, "rss_mb": rss}


def machine() -> dict:
    import onnxruntime

    from tools.latency import cpu_name

    return {"cpu": cpu_name(), "cores": bench_bare.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__}


def contenders(names: list[str], variants: list[str]) -> list:
    chosen = [bench_contenders.ALL[n]() for n in names]
    for variant in variants:
        label, _, pairs = variant.partition(":")
        env = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
        chosen.append(bench_contenders.appliance(env, f"appliance ({label})"))
    return chosen


def run(args: argparse.Namespace) -> dict:
    model = Path(args.model)
    from appliance import bundle as bundles

    manifest = bundles.read(model).manifest
    all_images = photos()
    images = {k: all_images[k] for k in args.images}
    report = {"model": manifest.name, "precision": manifest.model["precision"],
              "machine": machine(), "seconds": args.seconds, "warmup_s": args.warmup,
              "concurrency": args.concurrency,
              "images": {k: {key: v for key, v in info.items() if key != "jpeg"}
                         | {"bytes": len(info["jpeg"])} for k, info in images.items()},
              "bare": {}, "servers": []}
    expected = {k: bench_bare.top_label(model, info["jpeg"]) for k, info in images.items()}
    for key, info in images.items():
        print(f"bare onnxruntime, {key} photo", file=sys.stderr)
        report["bare"][key] = measure_bare(model, info["jpeg"], args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for contender in contenders(args.servers, args.variant):
            print(contender.name, file=sys.stderr)
            report["servers"].append(measure_server(contender, model, images, expected,
                                                    args.concurrency, args.seconds,
                                                    args.warmup, Path(scratch)))
        if args.rounds:
            print(f"alternating rounds: bare, box and floor at c=1, limit and box at "
                  f"c={max(args.concurrency)}", file=sys.stderr)
            report["paired"] = bench_paired.rounds(model, all_images["small"]["jpeg"],
                                                   Path(scratch), args.rounds,
                                                   args.round_seconds, max(args.concurrency))
    report["decode"] = bench_bare.decode_speed(model, all_images["phone"]["jpeg"])
    if args.compat:
        print(f"home and camera software's calls on {args.compat}", file=sys.stderr)
        folder = Path(args.compat)
        report["compat"] = bench_compat.paths(folder.parent, folder.name, args.compat_requests,
                                              args.seconds, args.compat_requests)
    if args.defaults:
        photo = all_images["small"]["jpeg"]
        report["memory"] = {
            "three": measure_memory(Path(args.defaults), THREE_DEFAULTS, photo),
            "all": measure_memory(Path(args.defaults), tuple(sorted(
                p.name for p in Path(args.defaults).iterdir()
                if (p / "manifest.json").exists())), photo)}
    report["goals"] = bench_report.goals(report)
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "efficientnet-lite0"))
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured time per cell")
    parser.add_argument("--servers", default="appliance,floor,naive,mlserver,bentoml,kserve")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--images", default="small,phone")
    parser.add_argument("--variant", action="append", default=[],
                        help="another appliance run with settings: NAME:KEY=VALUE,...")
    parser.add_argument("--defaults", default=str(ROOT / "models"),
                        help="built default bundles, for memory and start-up ('' to skip)")
    parser.add_argument("--compat", default=str(ROOT / "models" / "objects"),
                        help="a detection bundle for DeepStack's route and Frigate's zmq "
                             "detector against bare onnxruntime ('' to skip)")
    parser.add_argument("--compat-requests", type=int, default=300,
                        help="DeepStack calls at each concurrency, and bare runs")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds for the two speed goals (0 to skip)")
    parser.add_argument("--round-seconds", type=float, default=3.0,
                        help="measured time of each part of a round")
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in args.servers if s not in bench_contenders.ALL]
    if unknown:
        parser.error(f"unknown server {unknown[0]!r}; choose from "
                     f"{', '.join(bench_contenders.ALL)}")
    args.concurrency = sorted(int(c) for c in args.concurrency.split(","))
    args.images = [i for i in args.images.split(",") if i]
    if not Path(args.model, "manifest.json").exists():
        parser.error(f"--model {args.model}: no bundle there (build it with `make models`)")
    if args.compat and not Path(args.compat, "manifest.json").exists():
        parser.error(f"--compat {args.compat}: no bundle there (build it with `make models`, "
                     "or pass --compat '' to skip)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "bench.md").write_text(bench_report.to_markdown(report))
    (out / "bench.svg").write_text(bench_report.to_svg(report, args.images[0]))
    print(bench_report.to_markdown(report))
    print(f"wrote {out / 'bench.json'}, {out / 'bench.md'} and {out / 'bench.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
