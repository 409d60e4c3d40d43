"""waitress's workers woken most-recently-idle first, and no log line per waiting request."""

import logging
import threading
import time

from appliance.dispatch import HotThreadDispatcher, LifoCondition


def _waiting(lock, cv, order, name, ready):
    with lock:
        ready.release()
        cv.wait()
        order.append(name)


def test_the_most_recent_waiter_wakes_first():
    lock = threading.Lock()
    cv = LifoCondition(lock)
    order: list[str] = []
    threads = []
    for name in ("first", "second", "third"):
        ready = threading.Semaphore(0)
        thread = threading.Thread(target=_waiting, args=(lock, cv, order, name, ready))
        thread.start()
        ready.acquire()
        while True:  # until it really waits (the lock is released inside wait)
            with lock:
                if len(cv._waiters) == len(threads) + 1:
                    break
            time.sleep(0.001)
        threads.append(thread)
    with lock:
        cv.notify()
    threads[2].join(5)
    assert order == ["third"]
    with lock:
        cv.notify_all()
    for thread in threads:
        thread.join(5)
    assert sorted(order) == ["first", "second", "third"] and order[0] == "third"


def test_wait_times_out_and_leaves_no_waiter_behind():
    lock = threading.Lock()
    cv = LifoCondition(lock)
    with lock:
        started = time.monotonic()
        assert cv.wait(0.05) is False
        assert time.monotonic() - started >= 0.04 and cv._waiters == []
        cv.notify()  # nobody waits: nothing happens


class _Task:
    def __init__(self, done, seen):
        self.done, self.seen = done, seen

    def service(self):
        self.seen.append(threading.current_thread().name)
        self.done.release()

    def cancel(self):
        pass


def test_one_request_at_a_time_stays_on_one_hot_thread():
    dispatcher = HotThreadDispatcher(4)
    seen: list[str] = []
    done = threading.Semaphore(0)
    try:
        for _ in range(20):
            dispatcher.add_task(_Task(done, seen))
            assert done.acquire(timeout=5)
            time.sleep(0.002)  # the worker goes back to waiting
        assert len(set(seen[1:])) == 1  # a FIFO condition would cycle through all four
        for _ in range(8):  # a crowd still spreads over the workers
            dispatcher.add_task(_Task(done, seen))
        for _ in range(8):
            assert done.acquire(timeout=5)
    finally:
        dispatcher.shutdown(cancel_pending=True, timeout=5)


def test_a_crowd_waiting_for_workers_writes_no_log_line_per_request(caplog):
    dispatcher = HotThreadDispatcher(1)
    release, done = threading.Event(), threading.Semaphore(0)
    blocked = _Blocking(release, done)
    try:
        with caplog.at_level(logging.DEBUG, logger="waitress.queue"):
            dispatcher.add_task(blocked)
            for _ in range(8):  # all wait behind the one busy worker
                dispatcher.add_task(_Task(done, []))
            assert len(dispatcher.queue) >= 8
        assert [r.getMessage() for r in caplog.records if r.name == "waitress.queue"] == []
        release.set()
        for _ in range(9):  # and every one is still served
            assert done.acquire(timeout=5)
    finally:
        release.set()
        dispatcher.shutdown(cancel_pending=True, timeout=5)


class _Blocking(_Task):
    def __init__(self, release, done):
        super().__init__(done, [])
        self.release = release

    def service(self):
        self.release.wait(5)
        super().service()
