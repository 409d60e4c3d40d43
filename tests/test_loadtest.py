import pytest

from tools.bench import loadtest

pytestmark = pytest.mark.slow


def test_loadtest_runs_bounded_on_a_tiny_model(models_dir, capsys):
    code = loadtest.main(["--model", "tiny-classify", "--models-dir", str(models_dir),
                          "--seconds", "1.5", "--factor", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("capacity ") and "200:" in out and "peak RSS" in out


def test_summary_shares():
    report = loadtest.summarize([(200, 0.01), (503, 0.001), (200, 0.03)], 3, 1.0, 100.0)
    assert report["codes"] == {200: 2, 503: 1} and report["p50_ms"] == pytest.approx(20.0)
