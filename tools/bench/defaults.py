"""The default bundles as a person meets them: start to ready, memory after one request to
each, and one model's latency over HTTP at one request at a time (the camera-software case:
`objects` on a 320x320 JPEG).

    python tools/bench/defaults.py [--models-dir models] [--model objects] [--size 320]
                                   [--seconds 20] [--runs 3] [--state DIR]

Each run starts a fresh `appliance serve` on a loopback port (with `--state`, on one state
folder: the first run is a new box's first start, the others later starts). Prints one line
per run and a JSON summary; nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

from PIL import Image, ImageDraw, ImageFont

from tools.bench.client import build_request, closed_loop, multipart
from tools.live_server import LiveServer, get, post_image


def photo_jpeg(size: int) -> bytes:
    """scikit-image's astronaut (a person, a flag, a helmet) as a size x size JPEG."""
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((size, size)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def sign_jpeg() -> bytes:
    """A sign-like picture: three lines of dark text on a light board, 800x450."""
    picture = Image.new("RGB", (800, 450), (235, 232, 220))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=56)
    for row, line in enumerate(("Gallery Box 2026", "Licence: CC-BY 4.0", "Open 10-18")):
        draw.text((60, 60 + row * 120), line, fill=(25, 25, 30), font=font)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def one_run(models_dir: Path, model: str, size: int, seconds: float,
            state_dir: Path | None = None) -> dict:
    """Start a server; time it to ready; one request to every bundle; RSS; latency.
    `state_dir` kept between runs is a box that started before (its models' timing kept);
    None: a new state folder each run, the first start of a new box."""
    # No rate limit: one client sends far more than a visitor would, on purpose.
    env = {"APPLIANCE_AUTH_RATE_PER_MINUTE": "0"}
    with tempfile.TemporaryDirectory() as fresh, \
            LiveServer(models_dir, state_dir or Path(fresh), env=env) as server:
        server.wait_ready(120)
        ready_s = time.monotonic() - server.started
        names = [m["name"] for m in json.loads(get(server.url + "/v1/models")[1])["models"]]
        tasks = {m["name"]: m["task"] for m in json.loads(get(server.url + "/v1/models")[1])
                 ["models"]}
        statuses = {}
        for name in names:
            picture = sign_jpeg() if tasks[name] == "ocr" else photo_jpeg(512)
            statuses[name] = post_image(f"{server.url}/v1/models/{name}/infer", picture)[0]
        rss = server.rss_mb()
        body, content_type = multipart("image", photo_jpeg(size))
        request = build_request(f"/v1/models/{model}/infer", body, content_type)
        load = closed_loop(server.port, request, 1, seconds).summary()
        return {"ready_s": round(ready_s, 2), "rss_mb_after_one_each": round(rss, 1),
                "first_statuses": statuses, "model": model, "size": size, **load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", default="objects")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--state", type=Path, help="a state folder kept between runs (later "
                        "starts of one box); default: a new one each run (first starts)")
    args = parser.parse_args(argv)
    runs = []
    for number in range(1, args.runs + 1):
        run = one_run(args.models_dir, args.model, args.size, args.seconds, args.state)
        runs.append(run)
        print(f"run {number}: ready {run['ready_s']} s, RSS {run['rss_mb_after_one_each']} MB "
              f"after one request each, {args.model} {args.size}x{args.size} p50 "
              f"{run['p50_ms']:.1f} ms p99 {run['p99_ms']:.1f} ms ({run['requests']} "
              f"requests, statuses {run['statuses']}); first answers {run['first_statuses']}",
              flush=True)
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
