import pytest

from tools.bench import kiosk as bench_kiosk

pytestmark = pytest.mark.slow


def test_bench_runs_on_tiny_models(models_dir, capsys, monkeypatch):
    monkeypatch.setattr(bench_kiosk, "MODELS", ("tiny-classify", "tiny-negative"))
    assert bench_kiosk.main(["--seconds", "0.3", "--size", "160x90",
                             "--models-dir", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert "| tiny-classify |" in out and "| tiny-negative |" in out
