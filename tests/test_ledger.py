"""The usage ledger on its own: batches, roll-up into months, quotas, a garbage file, a
read-only state folder and a full disk."""

import contextlib
import logging
import sqlite3

import pytest

from appliance.errors import TooManyRequests
from appliance.ledger import LEDGER_FILE, Ledger, Row, day_of, seconds_to_midnight, statement

NOON = 1795867200.0  # 2026-11-28 12:00:00 UTC
DAY = 86400


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_are_written_in_one_batch_and_read_back(tmp_path):
    with Ledger(tmp_path, clock=Clock()) as book:
        for _ in range(3):
            book.record("ink", "none", ok=True)
        book.record("ink", "infer", ok=False)
        assert not (tmp_path / LEDGER_FILE).stat().st_size or _rows(tmp_path) == []
        assert book.flush()
    assert _rows(tmp_path) == [("2026-11-28", "ink", "infer", 0, 1),
                               ("2026-11-28", "ink", "none", 3, 0)]
    with Ledger(tmp_path, clock=Clock()) as again:  # reopened: nothing lost, nothing doubled
        again.record("ink", "none", ok=True)
        assert [r.answered for r in again.rows("ink") if r.token == "none"] == [4]


def test_rows_include_counts_not_yet_written(tmp_path):
    with Ledger(tmp_path, clock=Clock()) as book:
        book.record("ink", "none", ok=True)
        assert book.rows(month="2026-11") == [Row("2026-11-28", "ink", "none", 1, 0)]
        assert book.rows(month="2026-10") == [] and book.rows(model="pen") == []


def test_old_days_roll_up_into_their_month(tmp_path):
    clock = Clock(NOON - 100 * DAY)  # 2026-08-20
    book = Ledger(tmp_path, keep_days=31, clock=clock)
    for offset in range(0, 100, 10):  # ten days, 2026-08-20 to 2026-11-18
        clock.now = NOON - (100 - offset) * DAY
        book.record("ink", "none", ok=True)
        book.record("ink", "none", ok=True)
        book.flush()
    clock.now = NOON
    book.record("ink", "none", ok=True)
    book.flush()
    rows = book.rows("ink")
    book.close()
    periods = [r.period for r in rows]
    assert periods == ["2026-08", "2026-09", "2026-10", "2026-10-29", "2026-11-08",
                       "2026-11-18", "2026-11-28"]  # days before 2026-10-28 rolled up
    assert sum(r.answered for r in rows) == 21  # every count kept, only coarser
    assert [r.answered for r in rows[:3]] == [2 * 2, 3 * 2, 2 * 2]


def test_a_token_over_its_daily_quota_waits_for_midnight(tmp_path):
    clock = Clock()
    with Ledger(tmp_path, quotas={"none": 2, "infer": 0}, clock=clock) as book:
        book.admit("none")
        book.admit("none")
        with pytest.raises(TooManyRequests) as refused:
            book.admit("none")
        assert refused.value.headers == {"Retry-After": str(12 * 3600)}
        assert "usage.quota_none" in refused.value.message
        for _ in range(5):
            book.admit("infer")  # 0: no limit
        clock.now += 12 * 3600  # midnight UTC: a new day
        book.admit("none")


def test_the_quota_counts_what_was_used_before_a_restart(tmp_path):
    with Ledger(tmp_path, clock=Clock()) as book:
        book.record("ink", "none", ok=True)
        book.record("pen", "none", ok=False)
    with Ledger(tmp_path, quotas={"none": 2}, clock=Clock()) as again, \
            pytest.raises(TooManyRequests):
        again.admit("none")


def test_seconds_to_midnight_and_days_are_utc():
    assert seconds_to_midnight(NOON) == 12 * 3600
    assert seconds_to_midnight(NOON + 12 * 3600) == DAY
    assert day_of(NOON) == "2026-11-28"


def test_a_garbage_ledger_is_moved_aside_and_started_anew(tmp_path, caplog):
    (tmp_path / LEDGER_FILE).write_bytes(b"this is not a database at all\n" * 200)
    with caplog.at_level(logging.WARNING), Ledger(tmp_path, clock=Clock()) as book:
        book.record("ink", "none", ok=True)
        assert book.flush() and book.status()["recording"]
    aside = list(tmp_path.glob(f"{LEDGER_FILE}.broken-*"))
    assert [p.name for p in aside] == ["usage.db.broken-20261128T120000Z"]
    assert aside[0].read_bytes().startswith(b"this is not a database")
    assert "is not a usable database" in caplog.text and "moved aside" in caplog.text
    assert _rows(tmp_path) == [("2026-11-28", "ink", "none", 1, 0)]


def test_a_read_only_state_folder_counts_in_memory_and_says_so(tmpfs):
    folder = tmpfs("ro,size=1m")
    with Ledger(folder, clock=Clock()) as book:
        book.record("ink", "none", ok=True)
        assert not book.flush()
        status = book.status()
        assert not status["recording"] and "cannot open" in status["problem"]
        assert [r.answered for r in book.rows("ink")] == [1]
    assert list(folder.iterdir()) == []


def test_a_state_folder_made_writable_later_gets_the_counts(tmpfs, caplog):
    import subprocess

    folder = tmpfs("ro,size=1m")
    with Ledger(folder, clock=Clock()) as book:
        book.record("ink", "none", ok=True)
        assert not book.flush()
        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        book.record("ink", "none", ok=True)
        with caplog.at_level(logging.WARNING):
            assert book.flush() and book.status()["recording"]
        assert "opens now; recording again (1 rows kept from memory)" in caplog.text
    assert _rows(folder) == [("2026-11-28", "ink", "none", 2, 0)]


def test_a_full_disk_keeps_the_counts_until_it_has_room(tmpfs):
    folder = tmpfs("size=256k")
    with Ledger(folder, clock=Clock()) as book:
        filler = folder / "filler"
        with pytest.raises(OSError), open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        for n in range(2000):
            book.record(f"model-{n}", "none", ok=True)
        assert not book.flush()
        assert "full" in book.status()["problem"]
        filler.unlink()
        assert book.flush() and book.status()["recording"]
        assert len(book.rows()) == 2000
    with contextlib.closing(sqlite3.connect(folder / LEDGER_FILE)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_usage_enabled_false_keeps_nothing_on_disk(tmp_path):
    with Ledger(None, clock=Clock()) as book:
        book.record("ink", "none", ok=True)
        assert not book.status()["recording"] and book.rows()[0].answered == 1


def test_a_statement_says_how_often_the_model_answered():
    rows = [Row("2026-11-02", "ink", "none", 4000, 3), Row("2026-11-03", "ink", "infer", 312, 0)]
    text = statement("ink", "2026-11", rows, "gallery-box", "ink 1.0 by Ada, CC-BY-4.0")
    assert "Your model `ink` answered 4,312 requests on this box in November 2026." in text
    assert "3 more reached it but were not answered" in text
    assert "312 with the inference token, 4,000 without a token" in text
    assert "  2026-11-02      4,000" in text and "Box: gallery-box" in text


def _rows(folder):
    with contextlib.closing(sqlite3.connect(folder / LEDGER_FILE)) as db:
        return db.execute("SELECT * FROM usage ORDER BY period, model, token").fetchall()


def test_the_usage_command_reads_the_ledger(tmp_path, capsys):
    from appliance import cli

    with Ledger(tmp_path, clock=Clock()) as book:
        for _ in range(1234):
            book.record("ink", "none", ok=True)
        book.record("pen", "admin", ok=False)
    base = ["usage", "--config", str(_config(tmp_path))]
    assert cli.main(base) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["2026-11-28", "ink", "none", "1,234", "0"]
    assert cli.main([*base, "--csv", "--model", "pen"]) == 0
    assert capsys.readouterr().out == ("period,model,token,answered,failed\r\n"
                                       "2026-11-28,pen,admin,0,1\r\n")
    assert cli.main([*base, "--statement", "--model", "ink", "--month", "2026-11"]) == 0
    assert "answered 1,234 requests on this box in November 2026" in capsys.readouterr().out
    assert cli.main([*base, "--statement"]) == 2
    assert "--statement needs --model NAME" in capsys.readouterr().err
    assert cli.main([*base, "--month", "2026-1"]) == 2


def test_the_usage_command_without_a_ledger_says_so(tmp_path, capsys):
    from appliance import cli

    (tmp_path / "empty").mkdir()
    assert cli.main(["usage", "--config", str(_config(tmp_path / "empty"))]) == 1
    assert "no usage ledger yet" in capsys.readouterr().err


def _config(state):
    path = state / "appliance.toml"
    path.write_text(f'[state]\ndir = "{state}"\n')
    return path
