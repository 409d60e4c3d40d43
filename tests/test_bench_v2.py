import pytest

from tools.bench import v2 as bench_v2

pytestmark = pytest.mark.slow


def test_bench_v2_runs_on_a_tiny_model(models_dir, capsys):
    assert bench_v2.main(["--model", "tiny-classify", "--models-dir", str(models_dir),
                          "--rounds", "1", "--per-round", "2"]) == 0
    out = capsys.readouterr().out
    for row in ("| v1 multipart JPEG |", "| v2 binary tensor |", "| v2 JSON tensor |"):
        assert row in out
