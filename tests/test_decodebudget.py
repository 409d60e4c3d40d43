"""HARDENING row 29: the bytes image decodes hold, per decode and all together."""

import threading
import time

import pytest

from appliance.decodebudget import MB, DecodeBudget
from appliance.errors import Busy, PayloadTooLarge


def _holder(budget: DecodeBudget, nbytes: int, order: list, name: str,
            release: threading.Event) -> threading.Thread:
    """A thread that holds `nbytes` until `release` is set, noting when it got in."""
    def run():
        with budget.hold(nbytes, name):
            order.append(name)
            release.wait(5)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_for(check, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_row29_one_decode_over_its_budget_is_413_and_holds_nothing():
    budget = DecodeBudget(512 * MB, 256 * MB)
    message = (r"decoding this 7000x7000 RGBA PNG would take 300 MB of memory; this box "
               r"decodes up to 256 MB per image: save it as an 8-bit RGB JPEG or scale it down")
    with pytest.raises(PayloadTooLarge, match=message), \
            budget.hold(300 * MB, "7000x7000 RGBA PNG"):
        pytest.fail("the body ran")
    assert budget.in_flight == 0


def test_row29_decodes_that_do_not_fit_wait_then_get_503_with_retry_after():
    budget = DecodeBudget(100 * MB, 100 * MB, wait_s=0.2)
    release = threading.Event()
    order: list[str] = []
    first = _holder(budget, 60 * MB, order, "first", release)
    _wait_for(lambda: order == ["first"])
    started = time.monotonic()
    with pytest.raises(Busy, match=r"decoding other images \(60 of its 100 MB for decoding "
                                   r"in use; this big PNG needs 60 MB\): retry in a second") \
            as refused, budget.hold(60 * MB, "big PNG"):
        pytest.fail("went over the total")
    assert time.monotonic() - started >= 0.2
    assert refused.value.headers == {"Retry-After": "1"}
    assert refused.value.status == 503
    release.set()
    first.join(5)
    assert budget.in_flight == 0


def test_row29_a_waiting_decode_goes_in_when_bytes_come_free():
    budget = DecodeBudget(100 * MB, 100 * MB, wait_s=5)
    release = threading.Event()
    order: list[str] = []
    first = _holder(budget, 70 * MB, order, "first", release)
    _wait_for(lambda: order == ["first"])
    threading.Timer(0.1, release.set).start()
    with budget.hold(70 * MB):
        assert budget.in_flight == 70 * MB
    first.join(5)
    assert budget.in_flight == 0


def test_row29_first_come_first_served_so_big_decodes_are_not_starved():
    budget = DecodeBudget(100 * MB, 100 * MB, wait_s=5)
    releases = {name: threading.Event() for name in ("a", "big", "small")}
    order: list[str] = []
    threads = [_holder(budget, 50 * MB, order, "a", releases["a"])]
    _wait_for(lambda: order == ["a"])
    threads.append(_holder(budget, 60 * MB, order, "big", releases["big"]))
    time.sleep(0.05)  # "big" is queued first
    threads.append(_holder(budget, 10 * MB, order, "small", releases["small"]))
    time.sleep(0.1)
    assert order == ["a"], "the small decode overtook the big one that waited before it"
    releases["a"].set()
    _wait_for(lambda: len(order) == 3)
    assert order == ["a", "big", "small"]
    for event in releases.values():
        event.set()
    for thread in threads:
        thread.join(5)
    assert budget.in_flight == 0


def test_row29_bytes_come_back_when_the_decode_fails():
    budget = DecodeBudget(100 * MB, 100 * MB)
    with pytest.raises(ValueError, match="corrupt"), budget.hold(80 * MB):
        raise ValueError("corrupt")
    assert budget.in_flight == 0
    with budget.hold(100 * MB):
        assert budget.in_flight == 100 * MB


def test_per_decode_above_the_total_is_refused():
    with pytest.raises(ValueError, match="must be above 0 and at most total"):
        DecodeBudget(100, 200)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"imaging.max_decode_mb": 600}, "'imaging.max_decoding_mb' must be at least "
                                     "imaging.max_decode_mb"),
    ({"imaging.max_decode_mb": 0}, "'imaging.max_decode_mb' must be at least 1"),
])
def test_row29_budget_settings_are_checked(overrides, message):
    from appliance import config
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config.load(path="/dev/null", env={}, overrides=overrides)
