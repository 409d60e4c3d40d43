"""The two speed goals' ratios taken within alternating rounds on one machine.

On a shared machine the speed of everything moves from minute to minute: here the bare
loop's p50 went from 6.5 to 10.5 ms within an hour, and the main table measures the bare
loop, the box and the web floor minutes apart, so one of its ratios says as much about the
neighbours as about the box. Each round here measures, a few seconds each and one right
after the other, the bare loop, the box and the web floor one request at a time, then the
bare limit and the box at the top concurrency; each ratio is taken within its round, and the
report gives their median and range over the rounds.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from tools.bench import bare as bench_bare
from tools.bench import contenders as bench_contenders
from tools.bench.client import closed_loop

WARMUP_S = 0.5


def rounds(model: Path, photo: bytes, workdir: Path, count: int, seconds: float,
           top: int) -> dict:
    """`count` rounds against the box and the web floor, both started once for all of them.
    Raises RuntimeError when a server answers anything but 200 (a ratio of failures would
    mean nothing), bench_contenders.Unavailable when one does not start."""
    box = bench_contenders.start_answering(bench_contenders.appliance({}), model, workdir,
                                           photo)
    try:
        floor = bench_contenders.start_answering(bench_contenders.floor(), model, workdir,
                                                 photo)
        try:
            rows = [_round(box, floor, model, photo, seconds, top, n) for n in range(count)]
        finally:
            floor.stop()
    finally:
        box.stop()
    return {"count": count, "seconds": seconds, "concurrency": top, "rounds": rows,
            "overhead": spread([r["overhead"] for r in rows]),
            "vs_limit": spread([r["vs_limit"] for r in rows])}


def spread(values: list[float]) -> dict[str, float]:
    """The median, lowest and highest of `values`."""
    return {"median": statistics.median(values), "low": min(values), "high": max(values)}


def _round(box, floor, model: Path, photo: bytes, seconds: float, top: int, n: int) -> dict:
    bare_p50 = statistics.median(bench_bare.latency(model, photo, seconds))
    box_one = _load(box, photo, 1, seconds)
    floor_one = _load(floor, photo, 1, seconds)
    limit = bench_bare.limit(model, photo, seconds)["throughput_rps"]
    box_many = _load(box, photo, top, seconds)
    row = {"bare_p50_ms": bare_p50, "box_p50_ms": box_one["p50_ms"],
           "floor_p50_ms": floor_one["p50_ms"], "limit_rps": limit,
           "box_rps": box_many["throughput_rps"],
           "overhead": (box_one["p50_ms"] - bare_p50) / floor_one["p50_ms"],
           "vs_limit": box_many["throughput_rps"] / limit}
    print(f"  round {n + 1}: c=1 overhead {row['overhead']:.2f}, c={top} / limit "
          f"{row['vs_limit']:.2f}", file=sys.stderr)
    return row


def _load(running, photo: bytes, concurrency: int, seconds: float) -> dict:
    summary = closed_loop(running.port, running.request_for(photo), concurrency, seconds,
                          WARMUP_S).summary()
    if set(summary["statuses"]) != {"200"} or summary["errors"]:
        raise RuntimeError(f"{running.name} answered {summary['statuses']} with "
                           f"{summary['errors']} errors at {concurrency} in flight")
    return summary
