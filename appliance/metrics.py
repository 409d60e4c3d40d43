"""Prometheus text-format metrics: per-model request counts and latency histograms.

Small and dependency-free on purpose: the box needs a handful of series, not a client library.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics:
    """Counters and histograms for the box; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[str, _Histogram] = defaultdict(_Histogram)
        self._gauges: list[Callable[[], list[str]]] = []

    def observe(self, model: str, status: int, seconds: float) -> None:
        """Count one infer request on `model` with its HTTP status and latency."""
        with self._lock:
            self._requests[(model, str(status))] += 1
            if status == 200:
                self._latency[model].observe(seconds)

    def requests(self, model: str, status: int) -> int:
        with self._lock:
            return self._requests.get((model, str(status)), 0)

    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    def add_gauges(self, render: Callable[[], list[str]]) -> None:
        """Add a callable that returns ready-made exposition lines (queue depth and such)."""
        self._gauges.append(render)

    def render(self) -> str:
        """The exposition text for GET /metrics."""
        with self._lock:
            lines = self._render_requests() + self._render_latency()
        for render in self._gauges:
            lines += render()
        return "\n".join(lines) + "\n"

    def _render_requests(self) -> list[str]:
        lines = ["# HELP appliance_requests_total Inference requests by model and status.",
                 "# TYPE appliance_requests_total counter"]
        for (model, status), count in sorted(self._requests.items()):
            lines.append(f'appliance_requests_total{{model="{_esc(model)}",status="{status}"}}'
                         f" {count}")
        return lines

    def _render_latency(self) -> list[str]:
        name = "appliance_request_duration_seconds"
        lines = [f"# HELP {name} Latency of successful inference requests.",
                 f"# TYPE {name} histogram"]
        for model, hist in sorted(self._latency.items()):
            label = f'model="{_esc(model)}"'
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'{name}_bucket{{{label},le="{le}"}} {running}')
            lines.append(f"{name}_sum{{{label}}} {hist.total:.6f}")
            lines.append(f"{name}_count{{{label}}} {running}")
        return lines


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
