"""The run-deadline watcher: one thread terminates every run still going at its deadline."""

import threading
import time

import numpy as np
import onnxruntime as ort
import pytest

from appliance.deadlines import Deadlines
from tests import models as tiny


@pytest.fixture
def endless_session():
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(tiny.endless_model().SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def test_row33_a_loop_is_terminated_within_milliseconds_of_its_deadline(endless_session):
    bright = np.ones((1, 3, tiny.SIZE, tiny.SIZE), np.float32)
    with Deadlines() as deadlines, deadlines.watch(time.monotonic() + 0.3) as ticket:
        with pytest.raises(Exception, match="terminate flag"):
            endless_session.run(None, {"input": bright}, ticket.options)
        late = time.monotonic() - ticket.deadline
    assert ticket.expired and not ticket.cancelled
    assert 0 <= late < 0.1, f"stopped {late * 1000:.0f} ms after the deadline"


def test_one_watcher_thread_for_every_run_and_finished_runs_are_left_alone(endless_session):
    zeros = np.zeros((1, 3, tiny.SIZE, tiny.SIZE), np.float32)
    before = threading.active_count()
    with Deadlines() as deadlines:
        tickets = []
        for _ in range(50):
            with deadlines.watch(time.monotonic() + 0.05) as ticket:
                endless_session.run(None, {"input": zeros}, ticket.options)
            tickets.append(ticket)
        assert threading.active_count() == before + 1
        time.sleep(0.1)
    assert not any(t.expired or t.options.terminate for t in tickets)


def test_an_earlier_deadline_wakes_the_watcher(endless_session):
    bright = np.ones((1, 3, tiny.SIZE, tiny.SIZE), np.float32)
    with Deadlines() as deadlines, deadlines.watch(time.monotonic() + 60):
        with deadlines.watch(time.monotonic() + 0.2) as ticket, \
                pytest.raises(Exception, match="terminate flag"):
            endless_session.run(None, {"input": bright}, ticket.options)
        assert ticket.expired
