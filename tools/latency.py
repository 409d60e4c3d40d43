"""Latency of ONNX models on this machine, measured the way the box runs them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from appliance import config
from appliance.sessions import cpu_count, create_session


def measure(paths: dict[str, Path], tensor: np.ndarray, input_name: str,
            runs: int = 60, rounds: int = 3, budget_s: float = 20.0
            ) -> dict[str, dict[str, float]]:
    """p50/p95 in ms per model; models alternate in rounds so drift hits them alike.
    At most `runs` runs of each, fewer (never under `rounds` each) where the slowest warm-up
    run says they would take more than `budget_s` together: a big model's runs are long
    and steady, and 60 of them made a third of a default bundle's build."""
    settings = config.load(env={}).models
    # As the box runs a lone request: the idle session, every core, spinning threads.
    sessions = {key: create_session(path, settings, threads=cpu_count(), spin=True)
                for key, path in paths.items()}
    samples: dict[str, list[float]] = {key: [] for key in paths}
    warm = [_time(session, input_name, tensor, 5)[-1] for session in sessions.values()]
    fit = int(budget_s * 1000 / (max(warm) * len(sessions)))
    each = max(1, min(runs, fit) // rounds)
    for _ in range(rounds):
        for key, session in sessions.items():
            samples[key] += _time(session, input_name, tensor, each)
    return {key: {"p50_ms": float(np.percentile(s, 50)), "p95_ms": float(np.percentile(s, 95))}
            for key, s in samples.items()}


def _time(session, input_name: str, tensor: np.ndarray, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        session.run(None, {input_name: tensor})
        out.append((time.perf_counter() - started) * 1000)
    return out


def cpu_name() -> str:
    """The CPU's model name as Linux reports it ("unknown" elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    found = re.search(r"model name\s*:\s*(.+)", text)
    return found.group(1).strip() if found else "unknown"
