"""p50 latency of one inference over HTTP against onnxruntime's bare `session.run`, measured
side by side in one run, plus the server's resident memory and its time to ready.

    python tools/bench_latency.py --model models/efficientnet-lite0 [--image photo.jpg]
        [--rounds 5 --per-round 40] [--json out.json]

Bare loops and HTTP requests alternate in rounds so that drift on a shared machine hits both
alike. The server is the real `appliance serve` (waitress) on a loopback port, serving every
bundle in the model's folder, so the memory figure is that of the whole box.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    # Run as a script, this folder would be first on sys.path and its modules could shadow
    # installed packages (a `triton.py` here once hid the real triton from torch).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from appliance import bundle as bundles
from appliance import config, imaging, tasks
from appliance.engine import create_session
from tools.live_server import LiveServer


def default_photo() -> bytes:
    """scikit-image's Chelsea the cat as a JPEG (451x300)."""
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def time_http(connection: http.client.HTTPConnection, path: str, body: bytes,
              content_type: str, count: int) -> list[float]:
    """Milliseconds per request on one keep-alive connection, like a script's client."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} from {path}")
    return samples


def time_bare(session, bundle: bundles.Bundle, photo: bytes, count: int,
              with_image: bool) -> list[float]:
    """Milliseconds per `session.run` (and, if `with_image`, decode + preprocess too)."""
    task = tasks.get(bundle.manifest.task)
    spec = bundle.manifest.input
    tensor, _ = task.prepare(imaging.decode(photo, 10**9, task.decode_hint(spec)), spec)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        if with_image:
            tensor, _ = task.prepare(imaging.decode(photo, 10**9, task.decode_hint(spec)), spec)
        session.run(None, {spec.name: tensor})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(model_dir: Path, photo: bytes, rounds: int, per_round: int) -> dict:
    """Run the comparison; returns the figures as a dict."""
    bundle = bundles.read(model_dir)
    session = create_session(bundle.model_path, config.load(env={}).models)
    state = tempfile.TemporaryDirectory()
    # The per-client rate limit would answer 429 to a benchmark's single client.
    server = LiveServer(model_dir.parent.resolve(), Path(state.name),
                        env={"APPLIANCE_AUTH_RATE_PER_MINUTE": "0"})
    server.wait_ready(120)
    ready_s = time.monotonic() - server.started
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        body, content_type = multipart(photo)
        path = f"/v1/models/{bundle.name}/infer"
        time_http(connection, path, body, content_type, 10)  # warm both paths
        time_bare(session, bundle, photo, 10, with_image=True)
        runs = {"bare session.run": [], "bare decode+preprocess+run": [], "HTTP (appliance)": []}
        for _ in range(rounds):
            runs["bare session.run"] += time_bare(session, bundle, photo, per_round, False)
            runs["bare decode+preprocess+run"] += time_bare(session, bundle, photo, per_round,
                                                            True)
            runs["HTTP (appliance)"] += time_http(connection, path, body, content_type,
                                                  per_round)
        connection.close()
        rss = server.rss_mb()
    finally:
        server.stop()
        state.cleanup()
    return {"model": bundle.name, "image_bytes": len(photo), "ready_s": ready_s,
            "server_rss_mb": rss, "cpu": cpu_name(), "cores": os.cpu_count(),
            "results": {name: {"p50_ms": statistics.median(s), "p95_ms": percentile(s, 0.95),
                               "n": len(s)} for name, s in runs.items()}}


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    found = re.search(r"model name\s*:\s*(.+)", text)
    return found.group(1).strip() if found else "unknown"


def table(report: dict) -> str:
    """The figures as a Markdown table, ratios against bare session.run."""
    base = report["results"]["bare session.run"]["p50_ms"]
    lines = [f"{report['model']}, {report['cpu']}, {report['cores']} cores", "",
             "| path | p50 ms | p95 ms | p50 / bare session.run |", "| --- | --- | --- | --- |"]
    for name, r in report["results"].items():
        lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                     f"{r['p50_ms'] / base:.2f}x |")
    lines += ["", f"server resident memory with every bundle in the folder loaded: "
                  f"{report['server_rss_mb']:.0f} MB; process start to ready: "
                  f"{report['ready_s']:.2f} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a bundle folder")
    parser.add_argument("--image", help="a JPEG (default: scikit-image's Chelsea)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    photo = Path(args.image).read_bytes() if args.image else default_photo()
    report = measure(Path(args.model), photo, args.rounds, args.per_round)
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
