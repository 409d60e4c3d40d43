"""Deadlines for onnxruntime runs: one watcher thread stops every run that passes its deadline.

onnxruntime checks a run's `RunOptions.terminate` between nodes and between a Loop's
iterations, so setting it from another thread stops a model that would otherwise run for
ever (measured on a Loop of 10^12 steps: the run returns its error about 6 ms after the flag
is set). One thread watches every run of the process: no thread per run, and no wake-up per
run either, because a new run's deadline is later than the one being waited for unless the
timeouts differ. A node that never returns to the executor (one giant allocation or
product) cannot be stopped this way: `Runner.stuck` still reports it to the watchdog.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Any


class Ticket:
    """One run: its `RunOptions`, its deadline (monotonic seconds) and how it was stopped."""

    __slots__ = ("cancelled", "deadline", "expired", "options")

    def __init__(self, deadline: float, options: Any) -> None:
        self.deadline = deadline
        self.options = options
        self.expired = False
        self.cancelled = False

    def expire(self) -> None:
        """The deadline passed: stop the run."""
        self.expired = True
        self.options.terminate = True

    def cancel(self) -> None:
        """Stop the run now (the model is removed or the box is stopping)."""
        self.cancelled = True
        self.options.terminate = True


class Deadlines:
    """Watches runs and terminates each one that is still going at its deadline.

    Thread-safe; the watcher thread starts with the first run and ends at `close()`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: set[Ticket] = set()
        self._waiting_until = math.inf
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, deadline: float) -> Iterator[Ticket]:
        """A ticket whose `options` go to `session.run`; terminated at `deadline`
        (time.monotonic() seconds) unless the block has ended by then."""
        import onnxruntime as ort

        options = ort.RunOptions()
        options.log_severity_level = 4  # a stopped run is reported by the caller, once
        ticket = Ticket(deadline, options)
        with self._cond:
            self._active.add(ticket)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._watch, name="run-deadlines",
                                                daemon=True)
                self._thread.start()
            if deadline < self._waiting_until:
                self._cond.notify()
        try:
            yield ticket
        finally:
            with self._cond:
                self._active.discard(ticket)

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for ticket in [t for t in self._active if t.deadline <= now]:
                    ticket.expire()
                    self._active.discard(ticket)
                self._waiting_until = min((t.deadline for t in self._active),
                                          default=math.inf)
                timeout = None if self._waiting_until == math.inf \
                    else self._waiting_until - now
                self._cond.wait(timeout)

    def close(self) -> None:
        """Stop the watcher thread (runs still going are no longer watched)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> Deadlines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
