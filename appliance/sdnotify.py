"""systemd's notify protocol, in a few lines: one datagram per message to $NOTIFY_SOCKET.

READY=1 once the models are warm, STATUS= with the active model and request count,
WATCHDOG=1 only while the engine makes progress (a wedged inference stops the keep-alive and
systemd restarts the service), STOPPING=1 on shutdown. Without $NOTIFY_SOCKET every call
does nothing, so the same code runs under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify messages; a missing or broken socket is logged once, never raised."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading '@'; the kernel wants a NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else 0.0
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """Send `fields` as one message; False when there is no socket or it failed."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False


class Watchdog:
    """Keeps systemd informed: READY once, then STATUS and WATCHDOG every half interval
    while `progressing()` holds."""

    def __init__(self, notifier: Notifier, ready: Callable[[], bool],
                 progressing: Callable[[], bool], status: Callable[[], str],
                 period_s: float | None = None) -> None:
        self.notifier = notifier
        self.ready = ready
        self.progressing = progressing
        self.status = status
        self.period_s = period_s or (notifier.watchdog_s / 2 if notifier.watchdog_s else 5.0)
        self.announced = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """One round; True when a keep-alive was sent."""
        if not self.announced and self.ready():
            self.announced = self.notifier.send("READY=1", f"STATUS={self.status()}")
        elif self.announced:
            self.notifier.send(f"STATUS={self.status()}")
        if self.notifier.watchdog_s and self.progressing():
            return self.notifier.send("WATCHDOG=1")
        return False

    def start(self) -> None:
        if not self.notifier.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="sd-notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(min(self.period_s, 0.5) if not self.announced else self.period_s)

    def stop(self) -> None:
        """STOPPING=1 (once), and no more keep-alives."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.notifier.send("STOPPING=1", "STATUS=stopping: finishing in-flight requests")
        if self._thread is not None:
            self._thread.join(timeout=5)


def progressing(runners, limit_s: float, now: float | None = None) -> bool:
    """No model has been stuck on one job for longer than `limit_s` seconds."""
    moment = time.monotonic() if now is None else now
    return not any(r.stuck(moment, limit_s) for r in runners)
