"""Per-client rate limits for inference: a token bucket per client address, on a monotonic
clock (a Pi without a battery clock may jump by years at boot), with a bounded number of
clients kept so a flood of addresses cannot grow memory."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from appliance.errors import TooManyRequests

MAX_CLIENTS = 4096


class RateLimiter:
    """`per_minute` requests a minute per client with bursts of `burst`; 0 turns it off."""

    def __init__(self, per_minute: int, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """Spend one request for `client`. Raises TooManyRequests with Retry-After."""
        if self.rate <= 0:
            return
        now = self.clock()
        with self._lock:
            tokens, seen = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            if tokens < 1.0:
                self._remember(client, tokens, now)
                wait = math.ceil((1.0 - tokens) / self.rate)
                raise TooManyRequests(f"too many requests from {client}: at most "
                                      f"{round(self.rate * 60)} a minute; retry in {wait} s",
                                      headers={"Retry-After": str(wait)})
            self._remember(client, tokens - 1.0, now)

    def _remember(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
