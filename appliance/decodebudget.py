"""A process-wide budget, in bytes, for the memory image decodes hold at once.

The pixel limit alone is not a memory limit: a 111 KB PNG can decode to 7000x7000 16-bit
pixels, and several such uploads at once would take the box past its unit's `MemoryMax`.
Each decode reserves the bytes its header says it will hold at its peak; one that would
hold more than a single image may is refused (413), one that does not fit beside the decodes
in flight waits its turn briefly, then gets 503 with `Retry-After`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from appliance.errors import Busy, PayloadTooLarge

# How long a decode waits for room before 503: eight 49-megapixel PNGs sent at once (200 MB
# each, two at a time in the default 512 MB, about 2.5 s a pair on two cores) all decode;
# a client that keeps sending more is told to come back rather than held on a worker.
WAIT_S = 10.0
MB = 1 << 20


class DecodeBudget:
    """A counting semaphore in bytes, first come first served.

    `total` bounds the bytes of all decodes in flight, `per_decode` those of one decode
    (at most `total`, so that any decode admitted alone fits)."""

    def __init__(self, total: int, per_decode: int, wait_s: float = WAIT_S) -> None:
        if not 0 < per_decode <= total:
            raise ValueError(f"per_decode ({per_decode}) must be above 0 and at most "
                             f"total ({total})")
        self.total = total
        self.per_decode = per_decode
        self.wait_s = wait_s
        self._used = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Bytes held by decodes now."""
        with self._changed:
            return self._used

    @contextmanager
    def hold(self, nbytes: int, what: str = "image") -> Iterator[None]:
        """Hold `nbytes` for the body of the `with`; `what` names the image in errors.

        Raises PayloadTooLarge when `nbytes` is over `per_decode`, Busy (with Retry-After)
        when the bytes did not become free within `wait_s`."""
        if nbytes > self.per_decode:
            raise PayloadTooLarge(
                f"decoding this {what} would take {_mb(nbytes)} MB of memory; this box "
                f"decodes up to {_mb(self.per_decode)} MB per image: save it as an 8-bit "
                "RGB JPEG or scale it down")
        self._take(nbytes, what)
        try:
            yield
        finally:
            with self._changed:
                self._used -= nbytes
                self._changed.notify_all()

    def _take(self, nbytes: int, what: str) -> None:
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            # First come first served: a big decode is not overtaken forever by small ones.
            fits = self._changed.wait_for(
                lambda: self._queue[0] is ticket and self._used + nbytes <= self.total,
                self.wait_s)
            self._queue.remove(ticket)
            if fits:
                self._used += nbytes
            # The next in line may fit now, or may be at the head now that this one left.
            self._changed.notify_all()
            if not fits:
                raise Busy(f"the box is decoding other images ({_mb(self._used)} of its "
                           f"{_mb(self.total)} MB for decoding in use; this {what} needs "
                           f"{_mb(nbytes)} MB): retry in a second",
                           headers={"Retry-After": "1"})


def _mb(nbytes: int) -> int:
    return max(1, round(nbytes / MB))
