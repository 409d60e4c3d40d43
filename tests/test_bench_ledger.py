"""tools/bench/ledger.py counts through the ledger's own code and reports what it counted."""

import pytest

from tools.bench import ledger as bench_ledger


def test_every_request_is_counted_and_old_days_roll_up():
    day = bench_ledger.count(3000, models=2, days=1)
    assert day["counted"] == 3000 and day["rows"] == 2 * 3 * 2  # noon to noon: two days
    year = bench_ledger.count(3000, models=2, days=365)
    assert year["counted"] == 3000
    assert year["rows"] < 2 * 3 * 366  # rolled up into months
    assert year["bytes"] > 0


def test_the_command_prints_both_cases(capsys):
    assert bench_ledger.main(["--requests", "600", "--models", "2", "--runs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("600 requests over one day, 2 models x 3 tokens:")
    assert out[1].startswith("600 requests over a year")


@pytest.mark.default_models
@pytest.mark.slow
def test_cpu_per_request_with_the_ledger_on_and_off():
    from appliance import config

    models = config.CHECKOUT / "models"
    if not (models / "efficientnet-lite0" / "manifest.json").is_file():
        pytest.skip("efficientnet-lite0 is not built: run `make models`")
    found = bench_ledger.cpu_per_request(models, rounds=2, block=2)
    assert sorted(found) == ["off", "on"]
    assert all(len(v) == 2 and all(ms > 0 for ms in v) for v in found.values())
