import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from appliance import config
from appliance.bundle import read
from appliance.engine import Runner, check_signature, choose_providers, create_session
from appliance.errors import BundleError, Busy, ConfigError, ModelLoadError, Unavailable
from tests import models as tiny

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


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

    def run(self, names, feeds):
        self.started.set()
        self.gate.wait(10)
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.session.run(names, feeds)


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


def test_choose_providers():
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("auto", ALL) == ALL
    assert choose_providers("cuda, cpu", ALL) == ALL[1:]
    with pytest.raises(ConfigError, match="cuda is not available in this onnxruntime build"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="unknown provider 'tpu'"):
        choose_providers("tpu", ALL)


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
        with pytest.raises(ModelLoadError, match="failed on this input"):
            futures[1].result()
        assert np.argmax(futures[2].result()[0]) == 2


def test_batching_off_without_a_dynamic_batch(models_dir):
    bundle = tiny.write_bundle(models_dir, "fixed", model=tiny.classify_model(batch=1),
                               input={**tiny.manifest("x", "classify")["input"],
                                      "dynamic_batch": False})
    with Runner(bundle, _settings(max_batch=8)) as runner:
        assert runner.batching is False
        assert np.argmax(runner.run(_tensor([0, 1, 0]))[0]) == 1


def test_manifest_claiming_a_dynamic_batch_that_is_fixed(models_dir):
    bundle = tiny.write_bundle(models_dir, "liar", model=tiny.classify_model(batch=1))
    session = create_session(bundle.model_path, _settings())
    with pytest.raises(BundleError, match="dynamic_batch: true, but the model's batch "
                                          "dimension is fixed at 1"):
        check_signature(session, bundle)


def test_input_name_and_shape_mismatch(models_dir):
    spec = tiny.manifest("x", "classify")["input"]
    named = tiny.write_bundle(models_dir, "named", input={**spec, "name": "pixels"})
    session = create_session(named.model_path, _settings())
    with pytest.raises(BundleError, match="the model has no input 'pixels' \\(it has input\\)"):
        check_signature(session, named)
    sized = tiny.write_bundle(models_dir, "sized", input={**spec, "size": [16, 16]})
    with pytest.raises(BundleError, match="has shape \\['batch', 3, 8, 8\\], the manifest "
                                          "implies \\(1, 3, 16, 16\\)"):
        check_signature(session, sized)


def test_garbage_model_is_a_load_error(models_dir, tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load"):
        create_session(path, _settings())


def test_closed_runner_is_unavailable(classify_bundle):
    runner = Runner(classify_bundle, _settings())
    runner.close()
    runner.close()
    with pytest.raises(Unavailable, match="shutting down"):
        runner.run(_tensor([1, 0, 0]))


def _wait_for(condition, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_wedged_job_shows_as_stuck(classify_bundle):
    import time

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
