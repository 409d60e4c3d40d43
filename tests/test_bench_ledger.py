"""tools/bench_ledger.py counts through the ledger's own code and reports what it counted."""

from tools import bench_ledger


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
