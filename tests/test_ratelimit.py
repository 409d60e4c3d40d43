import pytest

from appliance.errors import TooManyRequests
from appliance.ratelimit import MAX_CLIENTS, RateLimiter
from tests.conftest import image_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate_on_a_monotonic_clock():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(TooManyRequests, match="at most 60 a minute; retry in 1 s") as caught:
        limiter.take("a")
    assert caught.value.headers == {"Retry-After": "1"}
    limiter.take("b")  # another client has its own bucket
    clock.now += 1.0
    limiter.take("a")


def test_off_and_bounded():
    RateLimiter(0, 1).take("a")
    limiter = RateLimiter(60, 1)
    for i in range(MAX_CLIENTS + 10):
        limiter.take(str(i))
    assert len(limiter._buckets) == MAX_CLIENTS


def test_row14_the_api_answers_429_with_retry_after(client, services):
    services.limiter = RateLimiter(per_minute=60, burst=2)
    codes = [client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.post("/v1/models/tiny-classify/infer", data=image_bytes())
    assert limited.headers["Retry-After"] == "1"
    assert limited.get_json()["error"]["code"] == "too_many_requests"


def test_row28_a_wall_clock_jump_changes_nothing(monkeypatch):
    import time

    limiter = RateLimiter(per_minute=60, burst=1)
    limiter.take("a")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 10 * 365 * 86400)  # ten years on
    with pytest.raises(TooManyRequests):
        limiter.take("a")  # still limited: the bucket runs on the monotonic clock
