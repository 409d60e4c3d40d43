import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from onnx import helper, numpy_helper

from appliance import config
from appliance.bundle import read
from appliance.engine import Runner
from appliance.errors import (
    BundleError,
    Busy,
    DeadlineExceeded,
    ModelLoadError,
    ModelRunError,
    Unavailable,
)
from appliance.sessions import create_session
from tests import models as tiny


class GatedSession:
    """A real onnxruntime session whose runs wait for a gate and record their batch sizes."""

    def __init__(self, session) -> None:
        self.session = session
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.batches: list[int] = []

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, names, feeds, options=None):
        self.started.set()
        self.gate.wait(10)
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.session.run(names, feeds, options)


def _settings(**models):
    overrides = {f"models.{k}": v for k, v in {"intra_op_threads": 1, **models}.items()}
    return config.load(env={}, overrides=overrides).models


def _tensor(rgb):
    tensor = np.zeros((1, 3, tiny.SIZE, tiny.SIZE), np.float32)
    tensor[0] = np.asarray(rgb, np.float32)[:, None, None]
    return tensor


@pytest.fixture
def classify_bundle(models_dir):
    return read(models_dir / "tiny-classify")


def test_run_returns_real_outputs(classify_bundle):
    with Runner(classify_bundle, _settings()) as runner:
        runner.warm_up()
        (logits,) = runner.run(_tensor([1, 0, 0]))
    assert logits.shape == (1, 4)
    assert int(np.argmax(logits)) == 0


def test_full_queue_is_busy_with_retry_after(classify_bundle):
    settings = _settings(queue_size=1)
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    gated.gate.clear()
    with Runner(classify_bundle, settings, session=gated) as runner, \
            ThreadPoolExecutor(2) as pool:
        first = pool.submit(runner.run, _tensor([1, 0, 0]))
        assert gated.started.wait(5)  # the worker holds job 1
        second = pool.submit(runner.run, _tensor([0, 1, 0]))  # waits in the queue
        _wait_for(lambda: runner.queue_depth == 1)
        with pytest.raises(Busy, match="has 1 requests waiting") as caught:
            runner.run(_tensor([0, 0, 1]))
        assert caught.value.headers == {"Retry-After": "1"}
        gated.gate.set()
        assert np.argmax(first.result()[0]) == 0
        assert np.argmax(second.result()[0]) == 1


def test_timeout_is_unavailable(classify_bundle):
    settings = _settings(timeout_s=0.2)
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    gated.gate.clear()
    runner = Runner(classify_bundle, settings, session=gated)
    with pytest.raises(Unavailable, match="did not answer within 0.2 s"):
        runner.run(_tensor([1, 0, 0]))
    gated.gate.set()
    runner.close()


def test_batches_are_identical_to_single_runs_in_order(classify_bundle):
    settings = _settings(max_batch=4, max_wait_ms=200)
    colours = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.1, 0.1, 0.1]]
    with Runner(classify_bundle, _settings()) as single:
        expected = [single.run(_tensor(c))[0] for c in colours]
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    with Runner(classify_bundle, settings, session=gated) as runner, \
            ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: runner.run(_tensor(c))[0], colours))
    assert max(gated.batches) > 1, f"no batch formed: {gated.batches}"
    for got, want in zip(results, expected, strict=True):
        assert got.shape == (1, 4)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_bad_request_does_not_fail_its_batch_mates(classify_bundle):
    settings = _settings(max_batch=4, max_wait_ms=200)
    bad = np.zeros((1, 3, tiny.SIZE, tiny.SIZE + 1), np.float32)
    inputs = [_tensor([1, 0, 0]), bad, _tensor([0, 0, 1])]
    with Runner(classify_bundle, settings) as runner, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(runner.run, t) for t in inputs]
        assert np.argmax(futures[0].result()[0]) == 0
        with pytest.raises(ModelRunError, match="failed on this input"):
            futures[1].result()
        assert np.argmax(futures[2].result()[0]) == 2


def test_batching_off_without_a_dynamic_batch(models_dir):
    bundle = tiny.write_bundle(models_dir, "fixed", model=tiny.classify_model(batch=1),
                               input={**tiny.manifest("x", "classify")["input"],
                                      "dynamic_batch": False})
    with Runner(bundle, _settings(max_batch=8)) as runner:
        assert runner.batching is False
        assert np.argmax(runner.run(_tensor([0, 1, 0]))[0]) == 1


def test_closed_runner_is_unavailable(classify_bundle):
    runner = Runner(classify_bundle, _settings())
    runner.close()
    runner.close()
    with pytest.raises(Unavailable, match="shutting down"):
        runner.run(_tensor([1, 0, 0]))


def _wait_for(condition, timeout=5.0):

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_wedged_job_shows_as_stuck(classify_bundle):

    settings = _settings()
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    gated.gate.clear()
    with Runner(classify_bundle, settings, session=gated) as runner, \
            ThreadPoolExecutor(1) as pool:
        assert not runner.stuck(time.monotonic(), 0.0)
        job = pool.submit(runner.run, _tensor([1, 0, 0]))
        assert gated.started.wait(5)
        now = time.monotonic()
        assert runner.stuck(now + 2.0, 1.0) and not runner.stuck(now, 1.0)
        gated.gate.set()
        job.result()
        _wait_for(lambda: runner.busy_since is None)
        assert not runner.stuck(time.monotonic() + 100, 1.0)


def test_micro_batches_split_back_by_each_requests_own_batch(classify_bundle):
    settings = _settings(max_batch=4, max_wait_ms=200)
    pair = np.concatenate([_tensor([1, 0, 0]), _tensor([0, 1, 0])])
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    with Runner(classify_bundle, settings, session=gated) as runner, \
            ThreadPoolExecutor(2) as pool:
        first = pool.submit(runner.run, pair)
        second = pool.submit(runner.run, _tensor([0, 0, 1]))
        (two,), (one,) = first.result(), second.result()
    assert two.shape == (2, 4) and one.shape == (1, 4)
    assert np.argmax(two, axis=1).tolist() == [0, 1] and int(np.argmax(one)) == 2
    assert max(gated.batches) == 3


def _with_serving(models_dir, serving):
    import json

    manifest_path = models_dir / "tiny-classify" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["serving"] = serving
    manifest_path.write_text(json.dumps(manifest))
    return read(models_dir / "tiny-classify")


def test_batching_comes_from_the_manifest_unless_the_owner_sets_it(models_dir):
    from appliance.engine import batching

    plain = read(models_dir / "tiny-classify")
    assert batching(plain, _settings()) == (1, 0.0)  # shipped settings: never waits
    served = _with_serving(models_dir, {"max_batch": 6, "max_wait_ms": 1.5})
    assert batching(served, _settings()) == (6, 1.5)
    assert batching(served, _settings(max_batch=2, max_wait_ms=0)) == (2, 0.0)
    fixed = read(models_dir / "tiny-faces")  # no dynamic batch: never batched
    assert batching(fixed, _settings(max_batch=8)) == (1, 0.0)


def test_manifest_batching_is_used_by_the_runner(models_dir):
    bundle = _with_serving(models_dir, {"max_batch": 3, "max_wait_ms": 200})
    settings = _settings()
    gated = GatedSession(create_session(bundle.model_path, settings))
    with Runner(bundle, settings, session=gated) as runner, ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(runner.run, [_tensor([1, 0, 0])] * 4))
    assert len(outs) == 4 and max(gated.batches) == 3 and sum(gated.batches) == 4


def test_bad_serving_values_name_the_field(models_dir):
    with pytest.raises(BundleError, match=r"manifest.json.serving.max_batch: must be above 0"):
        _with_serving(models_dir, {"max_batch": 0})
    with pytest.raises(BundleError, match=r"serving.max_wait_ms: must be 0 or more"):
        _with_serving(models_dir, {"max_wait_ms": -2})
    with pytest.raises(BundleError, match=r"serving.threads: unknown field"):
        _with_serving(models_dir, {"threads": 2})


def test_several_sessions_serve_one_queue_in_parallel(classify_bundle):
    settings = _settings(sessions=2, idle_session=False)
    with Runner(classify_bundle, settings) as runner:
        assert len(runner.sessions) == 2 and runner.sessions[0] is not runner.sessions[1]
        # Both workers hold a job at once: each blocks its own session on a gate.
        gates = [GatedSession(s) for s in runner.sessions]
        for gated in gates:
            gated.gate.clear()
        runner.sessions[:] = gates
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(runner.run, _tensor(rgb)) for rgb in ([1, 0, 0], [0, 1, 0])]
            assert all(g.started.wait(5) for g in gates)
            for gated in gates:
                gated.gate.set()
            answers = [int(np.argmax(job.result()[0])) for job in jobs]
    assert answers == [0, 1]


def _idle_runner(bundle, monkeypatch):
    from appliance import sessions

    monkeypatch.setattr(sessions, "cpu_count", lambda: 2)
    runner = Runner(bundle, _settings(intra_op_threads=0, sessions=1))
    idle, plain = GatedSession(runner.idle_session), GatedSession(runner.session)
    runner.idle_session, runner.sessions[0] = idle, plain
    return runner, idle, plain


def test_a_lone_request_runs_at_once_on_the_idle_session(classify_bundle, monkeypatch):
    runner, idle, plain = _idle_runner(classify_bundle, monkeypatch)
    with runner:
        threading.Event().wait(0.01)  # the model sits idle
        caller = threading.get_ident()
        ran_in = []
        real_run = idle.run
        idle.run = lambda names, feeds, options=None: \
            ran_in.append(threading.get_ident()) or real_run(names, feeds, options)
        (lone,) = runner.run(_tensor([1, 0, 0]))
    assert int(np.argmax(lone)) == 0
    assert ran_in == [caller] and plain.batches == []  # in the caller's thread


def test_a_crowd_queues_for_the_plain_sessions(classify_bundle, monkeypatch):
    runner, idle, plain = _idle_runner(classify_bundle, monkeypatch)
    with runner, ThreadPoolExecutor(4) as pool:
        idle.gate.clear()  # the first of the crowd holds the idle session...
        first = pool.submit(runner.run, _tensor([0, 1, 0]))
        assert idle.started.wait(5)
        # ...so the rest find it taken and queue for the worker and its plain session.
        rest = [pool.submit(runner.run, _tensor([0, 0, 1])) for _ in range(3)]
        answers = [int(np.argmax(job.result()[0])) for job in rest]
        idle.gate.set()
        assert int(np.argmax(first.result()[0])) == 1
    assert answers == [2, 2, 2] and len(plain.batches) == 3 and len(idle.batches) == 1


def test_a_request_queues_while_another_is_still_decoding(classify_bundle, monkeypatch):
    runner, idle, plain = _idle_runner(classify_bundle, monkeypatch)
    with runner, runner.admit():  # another request, still decoding its image
        with runner.admit():
            runner.run(_tensor([1, 0, 0]))
        assert runner._admitted == 1
    assert plain.batches == [1] and idle.batches == []
    assert runner._admitted == 0


def test_warm_up_warms_both_sessions(classify_bundle, monkeypatch):
    runner, idle, plain = _idle_runner(classify_bundle, monkeypatch)
    with runner:
        runner.warm_up()
    assert plain.batches == [1] and idle.batches == [1]


def test_the_idle_session_spins_on_every_core_and_can_be_turned_off(classify_bundle,
                                                                     monkeypatch):
    from appliance import sessions

    calls = []
    real = sessions.create_session
    monkeypatch.setattr(sessions, "cpu_count", lambda: 4)
    monkeypatch.setattr(sessions, "create_session", lambda path, settings, threads=None,
                        spin=None: calls.append((threads, spin)) or real(path, settings, 1))
    with Runner(classify_bundle, _settings(intra_op_threads=0, sessions=1)) as runner:
        assert runner.idle_session is not None
    # Timed on one thread without spinning first, that session then the plain one (small),
    # and the idle one on every core.
    assert calls == [(1, False), (4, True)]
    calls.clear()
    with Runner(classify_bundle, _settings(idle_session=False, sessions=1)):
        pass
    assert calls == [(None, None)]


def test_a_big_model_gets_one_session_on_every_core(classify_bundle, monkeypatch):
    from appliance import sessions

    calls = []
    real = sessions.create_session
    monkeypatch.setattr(sessions, "cpu_count", lambda: 4)
    monkeypatch.setattr(sessions, "BIG_MODEL_MS", 0.0)  # every model is big
    monkeypatch.setattr(sessions, "create_session", lambda path, settings, threads=None,
                        spin=None: calls.append((threads, spin)) or real(path, settings, 1))
    with Runner(classify_bundle, _settings(intra_op_threads=0, sessions=0)) as runner:
        assert runner.idle_session is None and len(runner.sessions) == 1
        assert int(np.argmax(runner.run(_tensor([0, 1, 0]))[0])) == 1
    assert calls == [(1, False), (4, False)]  # timed on one thread, served on every core


@pytest.fixture
def endless_bundle(tmp_path):
    return tiny.write_bundle(tmp_path / "m", "endless", model=tiny.endless_model())


def _cpu_s() -> float:
    return sum(os.times()[:2])


@pytest.mark.parametrize("idle_session", [True, False], ids=["inline", "queued"])
def test_row33_an_endless_run_is_stopped_at_its_deadline_and_the_cpu_released(
        endless_bundle, monkeypatch, idle_session):
    from appliance import sessions

    monkeypatch.setattr(sessions, "cpu_count", lambda: 2)  # the idle session exists
    settings = _settings(timeout_s=0.5, idle_session=idle_session, sessions=1)
    with Runner(endless_bundle, settings) as runner:
        assert (runner.idle_session is not None) is idle_session
        runner.run(_tensor([0, 0, 0]))  # zeros: the Loop runs no step
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=r"model endless did not finish within "
                           r"0.5 s \(models.timeout_s\): the run was stopped"):
            runner.run(_tensor([1, 1, 1]))  # 10^12 steps
        assert 0.5 <= time.monotonic() - started < 3  # the run itself is 10^12 steps
        assert runner.overruns == 1 and runner.busy_since is None
        cpu = _cpu_s()
        time.sleep(0.5)
        assert _cpu_s() - cpu < 0.15, "the stopped run still burns CPU"


def test_row33_a_job_queued_behind_a_wedge_is_not_run_past_its_deadline(endless_bundle):
    settings = _settings(timeout_s=1.0, idle_session=False, sessions=1)
    with Runner(endless_bundle, settings) as runner, ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        first = pool.submit(runner.run, _tensor([1, 1, 1]))
        _wait_for(lambda: runner.busy_since is not None)
        second = pool.submit(runner.run, _tensor([1, 1, 1]))
        with pytest.raises(DeadlineExceeded):
            first.result()
        with pytest.raises((DeadlineExceeded, Unavailable)):
            second.result()
        assert time.monotonic() - started < 1.9  # not one deadline after the other (2 s)


def test_row33_close_with_cancel_stops_a_running_wedge(endless_bundle):
    settings = _settings(timeout_s=30, idle_session=False, sessions=1)
    runner = Runner(endless_bundle, settings)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(runner.run, _tensor([1, 1, 1]))
        _wait_for(lambda: runner.busy_since is not None)
        queued = pool.submit(runner.run, _tensor([1, 1, 1]))
        _wait_for(lambda: runner.queue_depth == 1)
        started = time.monotonic()
        runner.close(cancel=True)
        assert time.monotonic() - started < 10  # the deadline is 30 s
        for job in (running, queued):
            with pytest.raises(Unavailable, match="was removed or the box is stopping"):
                job.result()
    assert not any(w.is_alive() for w in runner._workers)
    assert runner.overruns == 0  # cancelled, not the model's fault


def test_row33_a_model_that_wedges_on_zeros_fails_to_load(tmp_path, monkeypatch):
    from appliance import sessions

    monkeypatch.setattr(sessions, "cpu_count", lambda: 2)
    model = tiny.endless_model()
    for node in model.graph.node:  # max(input) + 1: zeros too run 10^12 steps
        if node.op_type == "ReduceMax":
            node.op_type = "ReduceSum"
            node.input.append("")
    model.graph.node.insert(1, helper.make_node("Add", ["top", "one_more"], ["top1"]))
    next(n for n in model.graph.node if n.op_type == "Mul" and "top" in n.input).input[0] = \
        "top1"
    model.graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32),
                                                           "one_more"))
    wedged = tiny.write_bundle(tmp_path / "m", "wedged", model=model)
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"wedged did not finish within 0.5 s "
                       r"\(models.timeout_s\) on an input of zeros"):
        Runner(wedged, _settings(timeout_s=0.5, sessions=1))
    assert time.monotonic() - started < 3


def test_row33_a_run_that_terminate_cannot_stop_still_shows_as_stuck(classify_bundle):
    settings = _settings(timeout_s=0.3, idle_session=False, sessions=1)
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    gated.gate.clear()  # a run deaf to RunOptions.terminate, like one giant node
    with Runner(classify_bundle, settings, session=gated) as runner:
        with pytest.raises(Unavailable, match="did not answer within 0.3 s"):
            runner.run(_tensor([1, 0, 0]))
        # so the systemd watchdog stops its keep-alives and the service is restarted
        assert runner.stuck(time.monotonic(), settings.timeout_s)
        gated.gate.set()


def test_row33_a_job_whose_request_gave_up_is_never_run(classify_bundle):
    settings = _settings(timeout_s=0.3, idle_session=False, sessions=1)
    gated = GatedSession(create_session(classify_bundle.model_path, settings))
    gated.gate.clear()
    with Runner(classify_bundle, settings, session=gated) as runner, \
            ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(runner.run, _tensor([1, 0, 0])) for _ in range(2)]
        for job in jobs:
            with pytest.raises(Unavailable, match="did not answer within 0.3 s"):
                job.result()
        gated.gate.set()  # the wedge ends: the worker finds the second job given up on
        _wait_for(lambda: runner.queue_depth == 0 and runner.busy_since is None)
    assert gated.batches == [1]


class _SlowSession:
    """A real session behind a run that takes 0.3 s and honours terminate, as onnxruntime's
    runs do: a well-behaved but slow model."""

    def __init__(self, real) -> None:
        self.real = real

    def get_inputs(self):
        return self.real.get_inputs()

    def get_outputs(self):
        return self.real.get_outputs()

    def run(self, names, feeds, options=None):
        started = time.monotonic()
        while time.monotonic() - started < 0.3:
            if options is not None and options.terminate:
                raise RuntimeError("Exiting due to terminate flag being set to true.")
            time.sleep(0.01)
        return self.real.run(names, feeds)


def test_row33_time_waiting_in_the_queue_is_not_the_models_overrun(classify_bundle):
    settings = _settings(timeout_s=1.0, idle_session=False, sessions=1, max_batch=1)
    slow = _SlowSession(create_session(classify_bundle.model_path, settings))
    with Runner(classify_bundle, settings, session=slow) as runner, \
            ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(runner.run, _tensor([1, 1, 1])) for _ in range(5)]
        errors = [f.exception(10) for f in futures]
    late = [e for e in errors if e is not None]
    assert late, "the crowd should have outwaited the deadline"
    assert all(isinstance(e, DeadlineExceeded | Unavailable) for e in late)
    assert runner.overruns == 0


def test_one_thread_sessions_get_a_worker_per_core_unless_sessions_are_set(classify_bundle,
                                                                           monkeypatch):
    from appliance import engine, sessions

    monkeypatch.setattr(engine, "cpu_count", lambda: 4)
    monkeypatch.setattr(sessions, "cpu_count", lambda: 4)
    with Runner(classify_bundle, _settings(sessions=0, intra_op_threads=0)) as runner:
        # with the idle session: one 1-thread session, not a copy per worker
        assert runner.idle_session is not None
        assert len(runner.sessions) == 1 and len(runner._workers) == 4
        outputs = list(ThreadPoolExecutor(4).map(runner.run, [_tensor([0, 1, 0])] * 8))
        assert all(int(np.argmax(out[0])) == 1 for out in outputs)
    with Runner(classify_bundle, _settings(idle_session=False, sessions=0,
                                           intra_op_threads=2)) as runner:
        assert len(runner._workers) == 2  # two 2-thread runs fill the four cores
    with Runner(classify_bundle, _settings(idle_session=False, sessions=0,
                                           intra_op_threads=8)) as runner:
        assert len(runner._workers) == len(runner.sessions) == 2  # wider than the machine:
        assert int(np.argmax(runner.run(_tensor([0, 1, 0]))[0])) == 1
    with Runner(classify_bundle, _settings(idle_session=False, sessions=1,
                                           intra_op_threads=1)) as runner:
        assert len(runner._workers) == 1  # the owner's number: one run at a time


def test_runs_stopped_together_are_one_overrun(endless_bundle, monkeypatch):
    from appliance import engine, sessions

    monkeypatch.setattr(engine, "cpu_count", lambda: 2)
    monkeypatch.setattr(sessions, "cpu_count", lambda: 2)
    settings = _settings(timeout_s=0.5, idle_session=False, sessions=0, intra_op_threads=1)
    with Runner(endless_bundle, settings) as runner, ThreadPoolExecutor(2) as pool:
        assert len(runner._workers) == 2
        together = [pool.submit(runner.run, _tensor([1, 1, 1])) for _ in range(2)]
        assert all(isinstance(f.exception(20), DeadlineExceeded) for f in together)
        assert runner.overruns == 1  # one stall of the box, not two faults of the model
        with pytest.raises(DeadlineExceeded):
            runner.run(_tensor([1, 1, 1]))  # a later run that overruns is counted again
        assert runner.overruns == 2
