"""The usage ledger's cost: a million requests counted through the box's own code path
(Ledger.admit and Ledger.record, batches written as the service writes them), the time per
request, and the file's size after them, for a busy day and for a year of use.

    python tools/bench_ledger.py [--requests 1000000] [--models 8] [--runs 3]

Requests per second with and without the ledger over HTTP, side by side in one run:
    python tools/bench.py --servers appliance --images small --concurrency 16 \\
        --variant ledger-off:usage.enabled=false
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
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
