"""tools/latency.py: the build's latency measurement, on a real onnxruntime session."""

import numpy as np
import onnx
import pytest

from tests import models as tiny
from tools import latency


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(tiny.classify_model(), str(path))
    return path


def _counted(monkeypatch) -> list[int]:
    counts: list[int] = []
    timed = latency._time

    def counting(session, input_name, tensor, count):
        counts.append(count)
        return timed(session, input_name, tensor, count)

    monkeypatch.setattr(latency, "_time", counting)
    return counts


def _tensor() -> np.ndarray:
    return np.zeros((1, 3, tiny.SIZE, tiny.SIZE), np.float32)


def test_each_model_gets_its_runs_in_rounds(model, monkeypatch):
    counts = _counted(monkeypatch)
    figures = latency.measure({"a": model, "b": model}, _tensor(), "input", runs=30)
    assert counts == [5, 5] + [10] * 6  # a warm-up each, then 3 rounds of 10 each
    assert set(figures) == {"a", "b"}
    assert 0 < figures["a"]["p50_ms"] <= figures["a"]["p95_ms"]


def test_a_slow_model_gets_fewer_runs_within_the_budget(model, monkeypatch):
    counts = _counted(monkeypatch)
    latency.measure({"a": model}, _tensor(), "input", runs=60, budget_s=0)
    assert counts == [5, 1, 1, 1]  # never under one a round
