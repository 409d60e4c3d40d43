"""A bounded load test on loopback: measure the box's capacity for one model, then send
requests at a multiple of it (open loop: arrivals do not wait for answers) for a fixed time,
and report the share of 200/503/429, latency p50/p99 and the server's peak resident memory.

    python tools/bench/loadtest.py --model efficientnet-lite0 [--models-dir models] [--factor 2]
        [--seconds 30] [--rate-limit]      (--rate-limit keeps the per-client limit on)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

from tools.live_server import LiveServer, post_image
from tools.photos import chelsea_jpeg

MAX_IN_FLIGHT = 256  # the client's own bound: a load test must not become a fork bomb


def capacity(url: str, body: bytes, seconds: float = 3.0, clients: int = 4) -> float:
    """Answers a second with a few closed-loop clients: what the box can do."""
    done = []
    deadline = time.monotonic() + seconds

    def client():
        while time.monotonic() < deadline:
            if post_image(url, body)[0] == 200:
                done.append(1)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done) / seconds


def drive(url: str, body: bytes, rate: float, seconds: float, server: LiveServer) -> dict:
    """Open-loop arrivals at `rate` a second for `seconds`; the outcome of each."""
    results: list[tuple[int, float]] = []
    peak = [server.rss_mb()]
    lock = threading.Lock()

    def one():
        started = time.perf_counter()
        code = post_image(url, body)[0]
        with lock:
            results.append((code, time.perf_counter() - started))

    def watch(stop: threading.Event):
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss_mb())
            stop.wait(0.2)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    with ThreadPoolExecutor(MAX_IN_FLIGHT) as pool:
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * rate) + 1
            for _ in range(due - sent):
                pool.submit(one)
            sent = due
            time.sleep(0.002)
    stop.set()
    watcher.join()
    return summarize(results, sent, seconds, peak[0])


def summarize(results, sent, seconds, peak_mb) -> dict:
    codes: dict[int, int] = {}
    for code, _ in results:
        codes[code] = codes.get(code, 0) + 1
    ok = sorted(t for code, t in results if code == 200)
    return {"sent": sent, "seconds": seconds, "codes": codes,
            "share": {c: n / max(1, len(results)) for c, n in codes.items()},
            "p50_ms": statistics.median(ok) * 1000 if ok else None,
            "p99_ms": ok[int(0.99 * (len(ok) - 1))] * 1000 if ok else None,
            "peak_rss_mb": peak_mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate-limit", action="store_true",
                        help="keep the per-client rate limit on (all requests are one client)")
    args = parser.parse_args(argv)
    env = {} if args.rate_limit else {"APPLIANCE_AUTH_RATE_PER_MINUTE": "0"}
    with tempfile.TemporaryDirectory() as state, \
            LiveServer(Path(args.models_dir).resolve(), Path(state), env=env) as server:
        server.wait_ready()
        url = f"{server.url}/v1/models/{args.model}/infer"
        body = chelsea_jpeg()
        can = capacity(url, body)
        report = drive(url, body, can * args.factor, args.seconds, server)
    shares = ", ".join(f"{code}: {share:.0%}" for code, share in sorted(report["share"].items()))
    print(f"capacity {can:.1f}/s; sent {report['sent']} at {can * args.factor:.1f}/s for "
          f"{args.seconds:g} s -> {shares}; p50 {report['p50_ms']:.0f} ms, p99 "
          f"{report['p99_ms']:.0f} ms (200s); peak RSS {report['peak_rss_mb']:.0f} MB")
    other = [c for c in report["codes"] if c >= 500 and c != 503]
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main())
