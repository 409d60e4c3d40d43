"""The usage ledger: how often each model answered on this box, per day and per token.

Counts live in memory and a background thread writes them to SQLite (WAL, synchronous=FULL)
in one transaction every `usage.flush_s` seconds and at shutdown, so a request never waits
on the disk and a `kill -9` or a power cut loses at most the last batch, never the file.
Tokens are named by what they are (`admin`, `infer`, `none`), never by their secret. Days
older than `usage.keep_days` are rolled up into their month, so the file stays small
whatever the traffic: its rows grow with days x models x tokens, not with requests.

A state folder that cannot be written keeps the counts in memory and says it is not
recording (GET /v1/usage, /readyz) until the file opens; a ledger file that is not a
database is moved aside with a warning and a new one started.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.errors import TooManyRequests

log = logging.getLogger(__name__)
LEDGER_FILE = "usage.db"
NO_TOKEN = "none"
TOKENS = ("admin", "infer", NO_TOKEN)
MAX_PENDING = 20_000  # (day, model, token) keys waiting for the disk: far above real use
SCHEMA = """CREATE TABLE IF NOT EXISTS usage (
    period TEXT NOT NULL,            -- a day (2026-11-29) or a rolled-up month (2026-11)
    model TEXT NOT NULL,
    token TEXT NOT NULL,             -- admin, infer or none: what it is, never the secret
    answered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, model, token)) WITHOUT ROWID"""
UPSERT = """INSERT INTO usage (period, model, token, answered, failed) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (period, model, token) DO UPDATE SET
    answered = answered + excluded.answered, failed = failed + excluded.failed"""
ROLL_UP = """INSERT INTO usage (period, model, token, answered, failed)
    SELECT substr(period, 1, 7), model, token, sum(answered), sum(failed) FROM usage
    WHERE length(period) = 10 AND period < ? GROUP BY substr(period, 1, 7), model, token
    ON CONFLICT (period, model, token) DO UPDATE SET
    answered = answered + excluded.answered, failed = failed + excluded.failed"""


@dataclass(frozen=True)
class Row:
    """Use of one model by one token in one period (a day, or a rolled-up month)."""

    period: str
    model: str
    token: str
    answered: int
    failed: int

    def as_dict(self) -> dict:
        return asdict(self)


def day_of(seconds: float) -> str:
    """The UTC day of `seconds` since the epoch, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


def seconds_to_midnight(seconds: float) -> int:
    """Whole seconds from `seconds` to the next UTC midnight (1 to 86400)."""
    return 86400 - int(seconds) % 86400


class Ledger:
    """Counts use in memory and writes it to `folder/usage.db` from a background thread.

    `quotas` maps a token id to the requests it may make a UTC day (0 or absent: no limit).
    `folder` None keeps the ledger in memory only (not recording)."""

    def __init__(self, folder: str | Path | None, flush_s: float = 5.0, keep_days: int = 92,
                 quotas: dict[str, int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(folder) / LEDGER_FILE if folder is not None else None
        self.flush_s = flush_s
        self.keep_days = keep_days
        self.quotas = {k: v for k, v in (quotas or {}).items() if v > 0}
        self.clock = clock
        self.problem: str | None = None  # why the ledger is not recording, when it is not
        self.dropped = 0  # counts lost because the disk failed for too long
        self._lock = threading.Lock()  # the counts in memory
        self._db_lock = threading.Lock()  # the connection
        self._pending: dict[tuple[str, str, str], list[int]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_memory = True  # until the file opens (tried again at each write)
        self._db = self._open()
        self._rolled = ""
        self._day = day_of(self.clock())
        self._today = self._load_today(self._day)

    # -- counting (request threads) -------------------------------------------------------

    def admit(self, token: str) -> None:
        """Charge one request to `token`'s day. Raises TooManyRequests, with Retry-After
        the seconds to the next UTC midnight, when its quota (usage.quota_*) is spent."""
        now = self.clock()
        with self._lock:
            self._roll_today(now)
            used = self._today.get(token, 0)
            quota = self.quotas.get(token, 0)
            if quota and used >= quota:
                wait = seconds_to_midnight(now)
                raise TooManyRequests(
                    f"the daily quota of the {token!r} token is spent ({quota} requests a "
                    f"UTC day, setting usage.quota_{token}): retry after midnight UTC, in "
                    f"{wait} s", headers={"Retry-After": str(wait)})
            self._today[token] = used + 1

    def record(self, model: str, token: str, ok: bool) -> None:
        """Count one request of `model` by `token`: answered when `ok`, else failed."""
        key = (day_of(self.clock()), model, token)
        with self._lock:
            counts = self._pending.get(key)
            if counts is None:
                if len(self._pending) >= MAX_PENDING:
                    self.dropped += 1
                    self._wake.set()
                    return
                counts = self._pending[key] = [0, 0]
            counts[0 if ok else 1] += 1

    # -- the disk (background thread) -----------------------------------------------------

    def start(self) -> Ledger:
        """Start the thread that writes a batch every flush_s seconds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Write the counts in memory in one transaction; on failure keep them for the next
        try and report why. Returns True when everything counted is on disk."""
        if self._in_memory and self.path is not None:
            self._reopen()
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return self.problem is None and not self._in_memory
        rows = [(*key, *counts) for key, counts in batch.items()]
        try:
            with self._db_lock, self._db:
                self._db.executemany(UPSERT, rows)
                self._roll_up_locked()
        except sqlite3.Error as exc:
            self._keep(batch)
            self._fail(f"cannot write {self.path}: {exc}")
            return False
        if self._in_memory:
            return False
        if self.problem is not None:
            log.warning("usage ledger: recording again in %s", self.path)
            self.problem = None
        return True

    def _reopen(self) -> None:
        """Try the file again (a state folder mounted late, made writable): on success, the
        counts kept in memory move into it and the ledger records again."""
        try:
            db = self._open_file()
        except (OSError, sqlite3.Error):
            return
        with self._db_lock:
            rows = select(self._db, None, None)
            with db:
                db.executemany(UPSERT, [(r.period, r.model, r.token, r.answered, r.failed)
                                        for r in rows])
            self._db.close()
            self._db, self._in_memory = db, False
        log.warning("usage ledger: %s opens now; recording again (%d rows kept from memory)",
                    self.path, len(rows))
        self.problem = None

    def _keep(self, batch: dict[tuple[str, str, str], list[int]]) -> None:
        with self._lock:
            for key, (answered, failed) in batch.items():
                counts = self._pending.setdefault(key, [0, 0])
                counts[0] += answered
                counts[1] += failed

    def _fail(self, problem: str) -> None:
        if self.problem != problem:
            log.error("usage ledger: %s; counting in memory until it works", problem)
        self.problem = problem

    def _roll_up_locked(self) -> None:
        cutoff = day_of(self.clock() - self.keep_days * 86400)
        if cutoff == self._rolled:
            return
        self._db.execute(ROLL_UP, (cutoff,))
        self._db.execute("DELETE FROM usage WHERE length(period) = 10 AND period < ?",
                         (cutoff,))
        self._rolled = cutoff

    def close(self) -> None:
        """Stop the thread and write the last batch (a second call does nothing)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._db_lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def rows(self, model: str | None = None, month: str | None = None) -> list[Row]:
        """Every row, counts not yet written included, for one model and one month (YYYY-MM)
        when given; by period, model, token."""
        self.flush()
        with self._db_lock:
            found = select(self._db, model, month)
        return found + self._unwritten(model, month)

    def _unwritten(self, model: str | None, month: str | None) -> list[Row]:
        # Counts a failing disk keeps in memory: shown, so a read-only box still reports.
        with self._lock:
            pending = list(self._pending.items())
        return [Row(p, m, t, a, f) for (p, m, t), (a, f) in sorted(pending)
                if (model is None or m == model) and (month is None or p[:7] == month)]

    def status(self) -> dict:
        """Whether the ledger is recording, where, and why not."""
        return {"recording": self.problem is None, "file": str(self.path or ""),
                "problem": self.problem, "dropped": self.dropped}

    # -- opening ----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            self.problem = "usage.enabled is false: counted in memory for this run only"
            return _connect(":memory:")
        try:
            db = self._open_file()
            self._in_memory = False
            return db
        except (OSError, sqlite3.Error) as exc:
            self._fail(f"cannot open {self.path}: {exc}")
            return _connect(":memory:")

    def _open_file(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _connect(self.path)
        except sqlite3.OperationalError:
            raise  # read-only, no space, no such folder: not the file's fault
        except sqlite3.DatabaseError as exc:  # not a database, or damaged
            moved = _move_aside(self.path, self.clock())
            log.warning("usage ledger: %s is not a usable database (%s): moved aside to %s, "
                        "a new ledger is started", self.path, exc, moved.name)
            return _connect(self.path)

    def _load_today(self, day: str) -> dict[str, int]:
        with self._db_lock:
            found = self._db.execute("SELECT token, sum(answered + failed) FROM usage WHERE "
                                     "period = ? GROUP BY token", (day,)).fetchall()
        return {token: int(total) for token, total in found}

    def _roll_today(self, now: float) -> None:
        day = day_of(now)
        if day != self._day:
            self._day, self._today = day, {}


def select(db: sqlite3.Connection, model: str | None, month: str | None) -> list[Row]:
    """The rows of `db` for one model and one month (YYYY-MM) when given."""
    where, args = [], []
    if model is not None:
        where.append("model = ?")
        args.append(model)
    if month is not None:
        where.append("substr(period, 1, 7) = ?")
        args.append(month)
    sql = "SELECT period, model, token, answered, failed FROM usage"
    sql += (" WHERE " + " AND ".join(where)) if where else ""
    return [Row(*r) for r in db.execute(sql + " ORDER BY period, model, token", args)]


def read(folder: str | Path, model: str | None = None, month: str | None = None) -> list[Row]:
    """The rows of the ledger in `folder`, opened read-only (beside a running server, whose
    last few seconds of counting may not be written yet). Raises FileNotFoundError when
    there is no ledger, sqlite3.Error when it cannot be read."""
    path = Path(folder) / LEDGER_FILE
    if not path.is_file():
        raise FileNotFoundError(2, "no usage ledger yet (the box writes it once it has "
                                "answered a request)", str(path))
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        return select(db, model, month)


def _connect(path: str | Path) -> sqlite3.Connection:
    """An open ledger: WAL, synchronous FULL, the table made. Raises sqlite3.DatabaseError
    for a file that is not a sound database, OperationalError when it cannot be opened."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        found = db.execute("PRAGMA quick_check").fetchone()[0]
        if found != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {found}")
        db.execute(SCHEMA)
        db.isolation_level = ""  # `with db:` is one transaction
    except BaseException:
        db.close()
        raise
    return db


def _move_aside(path: Path, now: float) -> Path:
    """Rename a broken ledger (and its WAL and shared-memory files) out of the way."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    moved = path.with_name(f"{path.name}.broken-{stamp}")
    path.replace(moved)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).replace(moved.with_name(moved.name + suffix))
    return moved


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def month_of(seconds: float) -> str:
    """The UTC month of `seconds` since the epoch, as YYYY-MM."""
    return day_of(seconds)[:7]


def to_csv(rows: list[Row]) -> str:
    """The rows as CSV with a header line (model names hold no commas or quotes)."""
    lines = ["period,model,token,answered,failed"]
    lines += [f"{r.period},{r.model},{r.token},{r.answered},{r.failed}" for r in rows]
    return "\r\n".join(lines) + "\r\n"


def totals(rows: list[Row]) -> dict[str, dict[str, int]]:
    """Answered and failed requests per model over `rows`."""
    found: dict[str, dict[str, int]] = {}
    for r in rows:
        entry = found.setdefault(r.model, {"answered": 0, "failed": 0})
        entry["answered"] += r.answered
        entry["failed"] += r.failed
    return found


def statement(model: str, month: str, rows: list[Row], box: str, credit: str = "",
              status: dict | None = None) -> str:
    """The text an artist can be sent: how often `model` answered on this box in `month`
    (YYYY-MM), by day and by kind of token, from `rows` of that model and month."""
    year, number = month.split("-")
    when = f"{MONTHS[int(number) - 1]} {year}"
    answered = sum(r.answered for r in rows)
    failed = sum(r.failed for r in rows)
    lines = [f"Usage statement: model `{model}`{f' ({credit})' if credit else ''}",
             f"Box: {box}", "",
             f"Your model `{model}` answered {answered:,} request"
             f"{'' if answered == 1 else 's'} on this box in {when}."]
    if failed:
        lines.append(f"{failed:,} more reached it but were not answered (a picture it could "
                     "not read, the box busy, a model error).")
    by_token = {t: sum(r.answered for r in rows if r.token == t) for t in TOKENS}
    if answered:
        lines += ["", "By who asked: " + ", ".join(
            f"{n:,} {_WHO[t]}" for t, n in by_token.items() if n) + "."]
    days = sorted({r.period for r in rows if len(r.period) == 10})
    if days:
        lines += ["", "By day (UTC):"]
        lines += [f"  {d}  {sum(r.answered for r in rows if r.period == d):>9,}" for d in days]
    if any(len(r.period) == 7 for r in rows):
        lines += ["", "(Older days of this month are kept as the month's total only.)"]
    if status is not None and not status.get("recording", True):
        lines += ["", f"Note: the box's ledger is not recording ({status.get('problem')}): "
                  "these counts may be short."]
    return "\n".join(lines).rstrip() + "\n"


_WHO = {"admin": "with the owner's token", "infer": "with the inference token",
        NO_TOKEN: "without a token"}
