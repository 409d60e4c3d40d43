import json

import pytest

from tests import models as tiny
from tools.bench import compat as bench_compat

pytestmark = pytest.mark.slow
pytest.importorskip("zmq", reason="pyzmq is not installed (pip install pyzmq)")


def test_bench_compat_runs_on_a_tiny_model(tmp_path):
    models = tmp_path / "models"
    tiny.write_crowd(models, "crowd", ["person", "car", "truck"])
    out = tmp_path / "compat.json"
    assert bench_compat.main(["--models-dir", str(models), "--model", "crowd",
                              "--requests", "8", "--zmq-seconds", "1", "--random", "30",
                              "--bare-runs", "5", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [h["in_flight"] for h in result["detection"]] == [1, 4]
    assert all(h["statuses"] == {"200": 8} for h in result["detection"])
    assert result["zmq"]["ready"] and result["zmq"]["calls"] > 0
    assert result["zmq"]["detections_per_call"] == 20  # 30 boxes, never a 21st
    assert result["metrics"]["statuses"] == {"404": 30}
    assert result["metrics"]["series_after"] == result["metrics"]["series_after_one_of_each"]
    assert result["ratios"]["zmq_p50_over_bare"] > 0
