"""tools/bench_latency.py runs end to end on a tiny model (its figures are not asserted:
performance is measured by the tool, never by timed tests)."""

import pytest

from tools import bench_latency

pytestmark = pytest.mark.slow


def test_bench_runs_on_a_tiny_model(models_dir, capsys):
    assert bench_latency.main(["--model", str(models_dir / "tiny-classify"), "--rounds", "1",
                               "--per-round", "3"]) == 0
    out = capsys.readouterr().out
    for row in ("| bare session.run |", "| bare decode+preprocess+run |",
                "| HTTP (appliance) |", "server resident memory"):
        assert row in out


def test_table_ratios():
    report = {"model": "m", "cpu": "c", "cores": 2, "server_rss_mb": 10.0, "ready_s": 0.5,
              "results": {"bare session.run": {"p50_ms": 2.0, "p95_ms": 3.0, "n": 1},
                          "HTTP (appliance)": {"p50_ms": 5.0, "p95_ms": 6.0, "n": 1}}}
    assert "| HTTP (appliance) | 5.00 | 6.00 | 2.50x |" in bench_latency.table(report)
