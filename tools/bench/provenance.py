"""What signing costs: milliseconds and bytes the box's C2PA manifest adds to one result.

    python tools/bench/provenance.py [--models sketch,cutout] [--runs 5] [--signs 50]

For each bundle, runs the model once on a 512x600 photograph (scikit-image's astronaut,
resized: nothing is downloaded), encodes the result as the API does (PNG, and JPEG where the
task makes it), then signs it `--signs` times with a key made as the box makes its own, in a
temporary folder. Each run prints the median and the fastest and slowest sign, and the bytes
added; the last line is a JSON summary with each figure's range over the runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

ROOT = Path(__file__).resolve().parents[2]
SIZE = (512, 600)


def photo() -> bytes:
    """A 512x600 JPEG of a real photograph."""
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize(SIZE, Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def results(model: str, upload: bytes) -> dict[str, tuple[bytes, str, object]]:
    """(encoded result, MIME type, claim) per format the model's task answers in."""
    import hashlib

    from appliance import bundle, config, imaging, pipeline, provenance
    from appliance.engine import Runner

    settings = config.load(env={})
    found = bundle.read(ROOT / "models" / model)
    with Runner(found, settings.models) as runner:
        answer = pipeline.infer(runner, upload, {}, settings.imaging.max_pixels)
    formats = ["png", "jpeg"] if found.manifest.task == "image-to-image" else ["png"]
    out = {}
    for fmt in formats:
        data, mime = imaging.encode(answer.result.image, fmt, found.manifest.attribution)
        sha = hashlib.sha256(upload).hexdigest()
        claim = provenance.Claim(model, found.manifest.version, found.manifest.task,
                                 found.manifest.attribution, sha, "JPEG",
                                 provenance.result_id(model, found.manifest.version, sha, data))
        out[fmt] = (data, mime, claim)
    return out


def one_run(signer, encoded: dict, signs: int) -> dict[str, dict]:
    figures = {}
    for fmt, (data, mime, claim) in encoded.items():
        times, signed = [], b""
        for _ in range(signs):
            started = time.perf_counter()
            signed = signer.sign(data, mime, claim)
            times.append((time.perf_counter() - started) * 1000)
        figures[fmt] = {"bytes": len(data), "added": len(signed) - len(data),
                        "median_ms": round(statistics.median(times), 2),
                        "min_ms": round(min(times), 2), "max_ms": round(max(times), 2)}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="sketch,cutout")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--signs", type=int, default=50)
    args = parser.parse_args(argv)
    from appliance import provenance, signkeys

    upload = photo()
    encoded = {m: results(m, upload) for m in args.models.split(",")}
    summary: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as state:
        signer = provenance.Signer(signkeys.load_or_make(state), "bench")
        for run in range(args.runs):
            for model, formats in encoded.items():
                for fmt, figures in one_run(signer, formats, args.signs).items():
                    print(f"run {run + 1} {model} {fmt}: {figures['bytes']} bytes "
                          f"+{figures['added']}, sign median {figures['median_ms']} ms "
                          f"(min {figures['min_ms']}, max {figures['max_ms']})", flush=True)
                    entry = summary.setdefault(f"{model} {fmt}", {"bytes": figures["bytes"],
                                                                  "added": [], "median_ms": []})
                    entry["added"].append(figures["added"])
                    entry["median_ms"].append(figures["median_ms"])
        signer.close()
    print(json.dumps({k: {"bytes": v["bytes"], "added": [min(v["added"]), max(v["added"])],
                          "median_ms": [min(v["median_ms"]), max(v["median_ms"])]}
                      for k, v in summary.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
