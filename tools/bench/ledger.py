"""The usage ledger's cost: a million requests counted through the box's own code path
(Ledger.admit and Ledger.record, batches written as the service writes them), the time per
request, and the file's size after them, for a busy day and for a year of use.

    python tools/bench/ledger.py [--requests 1000000] [--models 8] [--runs 3]

    python tools/bench/ledger.py --cpu [--rounds 10 --block 100]

measures the CPU the box spends a request on the default efficientnet-lite0 and the small
photo through the whole Flask app (admission, decode, model, JSON), the ledger on and off
in alternating blocks in one process: CPU time rather than wall time, so other work on the
machine disturbs it far less. At full throughput a box is CPU-bound, so requests a second
go as one over the CPU per request.

Requests per second with and without the ledger over HTTP, side by side in one run:
    python tools/bench/servers.py --servers appliance --images small --concurrency 16 \\
        --variant ledger-off:usage.enabled=false
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

from appliance.ledger import LEDGER_FILE, TOKENS, Ledger

START = 1795867200.0  # 2026-11-28 12:00 UTC
BATCH = 2000  # requests between writes: about 5 s (usage.flush_s) of a busy box


def count(requests: int, models: int, days: int) -> dict:
    """Count `requests` spread evenly over `days` days, `models` models and the three
    tokens; return the seconds per request and the ledger's size on disk after it."""
    names = [f"model-{n}" for n in range(models)]
    now = [START]
    with tempfile.TemporaryDirectory() as folder:
        book = Ledger(folder, keep_days=92, clock=lambda: now[0])
        step = days * 86400 / requests
        started = time.perf_counter()
        for n in range(requests):
            token = TOKENS[n % 3]
            book.admit(token)
            book.record(names[n % models], token, ok=n % 50 != 0)
            now[0] += step
            if n % BATCH == BATCH - 1:
                book.flush()
        book.close()
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        rows = Ledger(folder).rows()
    return {"us_per_request": seconds / requests * 1e6, "bytes": size, "rows": len(rows),
            "counted": sum(r.answered + r.failed for r in rows)}


def cpu_per_request(models: Path, rounds: int, block: int) -> dict[str, list[float]]:
    """CPU milliseconds a request, ledger on and off, one figure per block of `block`
    requests, `rounds` blocks each way in alternating order."""
    from appliance import config
    from appliance.api import create_app
    from appliance.services import Services
    from tools.bench.servers import photos

    with tempfile.TemporaryDirectory() as folder:
        shelf = Path(folder) / "models"
        shelf.mkdir()
        (shelf / "efficientnet-lite0").symlink_to((models / "efficientnet-lite0").resolve())
        settings = config.load(env={}, overrides={
            "models.dir": str(shelf), "state.dir": str(Path(folder) / "state"),
            "auth.rate_per_minute": 0, "discovery.enabled": False,
            # no spinning threads: their spin would count as CPU spent on the request
            "models.idle_session": False, "models.spin": False})
        with Services.build(settings, admin="bench-admin-token-0123") as services:
            services.start(background=False)
            client = create_app(settings, services).test_client()
            photo = photos()["small"]["jpeg"]
            ledger, found = services.ledger, {"on": [], "off": []}
            for n in range(rounds):
                for mode in (("on", "off") if n % 2 == 0 else ("off", "on")):
                    services.ledger = ledger if mode == "on" else None
                    found[mode].append(_block(client, photo, block))
            services.ledger = ledger
    return found


def _block(client, photo: bytes, block: int) -> float:
    started = time.process_time()
    for _ in range(block):
        response = client.post("/v1/models/efficientnet-lite0/infer", data=photo,
                               content_type="image/jpeg")
        assert response.status_code == 200, response.data
    return (time.process_time() - started) / block * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu", action="store_true", help="CPU a request through the app, "
                        "the ledger on and off (needs the default bundles in --models-dir)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if args.cpu:
        found = cpu_per_request(Path(args.models_dir), args.rounds, args.block)
        for mode, values in found.items():
            ordered = sorted(values)
            print(f"ledger {mode}: CPU {ordered[0]:.3f}-{ordered[-1]:.3f} ms a request "
                  f"(median {ordered[len(ordered) // 2]:.3f}) over {len(values)} blocks of "
                  f"{args.block}")
        return 0
    for label, days in (("one day", 1), ("a year", 365)):
        found = [count(args.requests, args.models, days) for _ in range(args.runs)]
        assert all(f["counted"] == args.requests for f in found), found
        us = [f"{f['us_per_request']:.2f}" for f in found]
        print(f"{args.requests:,} requests over {label}, {args.models} models x 3 tokens: "
              f"{', '.join(us)} us per request (admit + record + its share of the writes); "
              f"{LEDGER_FILE} {found[0]['bytes'] / 1024:.0f} KB, {found[0]['rows']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
