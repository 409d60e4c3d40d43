"""onnxruntime sessions: providers, threads per session, and the model's signature."""

import json

import pytest

from appliance import config, sessions
from appliance.errors import BundleError, ConfigError, ModelLoadError
from appliance.sessions import check_signature, choose_providers, create_session
from tests import models as tiny

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def _settings(**models):
    overrides = {f"models.{k}": v for k, v in {"intra_op_threads": 1, **models}.items()}
    return config.load(env={}, overrides=overrides).models


def test_choose_providers():
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("auto", ALL) == ALL
    assert choose_providers("cuda, cpu", ALL) == ALL[1:]
    with pytest.raises(ConfigError, match="cuda is not available in this onnxruntime build"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="unknown provider 'tpu'"):
        choose_providers("tpu", ALL)


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


def test_sessions_and_threads_from_the_core_count(monkeypatch):
    monkeypatch.setattr(sessions, "cpu_count", lambda: 4)
    auto = _settings(intra_op_threads=0, sessions=0)
    assert (sessions.session_count(auto), sessions.threads_per_session(auto)) == (2, 1)
    no_idle = _settings(intra_op_threads=0, sessions=0, idle_session=False)
    assert (sessions.session_count(no_idle), sessions.threads_per_session(no_idle)) == (2, 2)
    assert sessions.threads_per_session(_settings(intra_op_threads=0, sessions=4,
                                                idle_session=False)) == 1
    assert sessions.threads_per_session(_settings(intra_op_threads=3, sessions=2)) == 3
    monkeypatch.setattr(sessions, "cpu_count", lambda: 1)
    assert sessions.session_count(auto) == 1


def test_a_pipeline_of_graphs_runs_without_arenas_on_every_core(tmp_path):
    """Text's graphs see a new input size with every picture and line: onnxruntime's arena
    would keep the largest activations ever held (230 MB after a few signs here)."""
    from appliance.engine import Runner

    found = tiny.ocr_bundle(tmp_path)
    runner = Runner(found, config.load(env={}).models)
    try:
        assert runner.idle_session is None and len(runner.sessions) == 1
        for session in (runner.session, *runner.graphs.values()):
            options = session.get_session_options()
            assert not options.enable_cpu_mem_arena
            assert options.intra_op_num_threads == sessions.cpu_count()
    finally:
        runner.close()


def test_a_model_fed_each_photos_own_aspect_runs_without_an_arena(tmp_path):
    """An edges model runs at each photo's aspect (HED up to 416 px): with an arena, the
    default bundles' first requests left 313-357 MB resident against 247-250 without."""
    from appliance import bundle as bundles
    from appliance.engine import Runner

    spec = tiny.manifest("x", "edges")["input"]
    tiny.write_bundle(tmp_path, "tiny-edges", "edges", input={**spec, "size": [32, 32]})
    runner = Runner(bundles.read(tmp_path / "tiny-edges"), config.load(env={}).models)
    try:
        assert runner.idle_session is None and len(runner.sessions) == 1
        options = runner.session.get_session_options()
        assert not options.enable_cpu_mem_arena
        assert options.intra_op_num_threads == sessions.cpu_count()
    finally:
        runner.close()


def test_a_single_graph_model_keeps_its_arena(tmp_path):
    from appliance import bundle as bundles
    from appliance.engine import Runner

    tiny.write_bundle(tmp_path, "one")
    runner = Runner(bundles.read(tmp_path / "one"), config.load(env={}).models)
    try:
        assert runner.session.get_session_options().enable_cpu_mem_arena
    finally:
        runner.close()


def test_sessions_with_an_arena_share_the_processs_one(models_dir):
    bundle = tiny.write_bundle(models_dir, "shared", "classify")
    assert sessions.shared_arena() is True
    entry = "session.use_env_allocators"
    shared = create_session(bundle.model_path, _settings())
    own = create_session(bundle.model_path, _settings(), arena=False)
    assert shared.get_session_options().get_session_config_entry(entry) == "1"
    assert not own.get_session_options().enable_cpu_mem_arena
    with pytest.raises(RuntimeError):  # never asked of a session without an arena
        own.get_session_options().get_session_config_entry(entry)


def test_a_refused_shared_arena_leaves_each_session_its_own(monkeypatch, caplog):
    import onnxruntime

    def refuse(*args):
        raise RuntimeError("an allocator is registered already")

    monkeypatch.setattr(onnxruntime, "create_and_register_allocator", refuse)
    assert sessions.shared_arena.__wrapped__() is False
    assert caplog.messages == ["onnxruntime refused a shared CPU arena (an allocator is "
                               "registered already): each session keeps its own"]


def _open(bundle, plans, monkeypatch, ms=None):
    """open_sessions on 2 cores with the idle session; `ms` fakes the timing run (None:
    a timing run must not happen)."""
    from appliance.deadlines import Deadlines

    def timing(*_args):
        if ms is None:
            raise AssertionError("the timing run ran although a plan was kept")
        return ms

    monkeypatch.setattr(sessions, "cpu_count", lambda: 2)
    monkeypatch.setattr(sessions, "_run_ms", timing)
    settings = config.load(env={}).models
    with Deadlines() as deadlines:
        return sessions.open_sessions(bundle, settings, deadlines, plans)


@pytest.mark.parametrize("ms, plain, idle", [(2.0, 1, True), (50.0, 1, False)])
def test_a_kept_timing_serves_the_model_the_same_way_without_measuring(
        models_dir, tmp_path, monkeypatch, ms, plain, idle):
    bundle = tiny.write_bundle(models_dir, "timed")
    path = tmp_path / "state" / "model-timing.json"
    first, first_idle = _open(bundle, sessions.Plans(path), monkeypatch, ms)
    assert (len(first), first_idle is not None) == (plain, idle)
    again, again_idle = _open(bundle, sessions.Plans(path), monkeypatch)  # no timing run
    assert (len(again), again_idle is not None) == (plain, idle)
    other = tiny.write_bundle(models_dir, "other", model=tiny.classify_model(batch=1),
                              input={**tiny.manifest("x", "classify")["input"],
                                     "dynamic_batch": False})
    assert _open(other, sessions.Plans(path), monkeypatch, 3.0)  # another file: measured


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": "fast"}', ""])
def test_a_damaged_timing_file_is_measured_anew(models_dir, tmp_path, monkeypatch, content):
    bundle = tiny.write_bundle(models_dir, "timed")
    path = tmp_path / "model-timing.json"
    path.write_text(content, encoding="utf-8")
    assert _open(bundle, sessions.Plans(path), monkeypatch, 2.0)
    assert len(json.loads(path.read_text(encoding="utf-8"))) == 1


def test_a_read_only_state_still_serves_and_says_so(models_dir, tmp_path, monkeypatch,
                                                    caplog):
    bundle = tiny.write_bundle(models_dir, "timed")
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    plans = sessions.Plans(blocked / "model-timing.json")  # its folder is a file
    assert _open(bundle, plans, monkeypatch, 2.0)
    assert "each start measures them again" in caplog.text
    assert plans.run_ms(sessions.Plans.key(bundle, config.load(env={}).models)) == 2.0


class _Timed:
    """A real session whose runs take at least the next of `ms` (milliseconds) each."""

    def __init__(self, session, ms: list[float]) -> None:
        self.session, self.ms, self.runs = session, list(ms), 0

    def get_inputs(self):
        return self.session.get_inputs()

    def run(self, *args):
        import time

        started = time.perf_counter()
        out = self.session.run(*args)
        self.runs += 1
        time.sleep(max(0.0, self.ms.pop(0) / 1000 - (time.perf_counter() - started)))
        return out


def _time(models_dir, ms: list[float]) -> tuple[float, int]:
    from appliance.deadlines import Deadlines

    bundle = tiny.write_bundle(models_dir, "timed")
    session = _Timed(create_session(bundle.model_path, _settings()), ms)
    with Deadlines() as deadlines:
        return sessions._run_ms(session, bundle, deadlines, 30.0), session.runs


def test_a_slow_run_while_the_box_starts_does_not_make_a_small_model_big(models_dir):
    # One run after one warm-up measured efficientnet-lite0 at 13.1 ms in a starting box,
    # where its runs take 6.2-8.2 ms: served as a big model for good.
    ms, runs = _time(models_dir, [40.0, 13.0, 6.0, 30.0, 30.0])
    assert 6.0 <= ms < sessions.BIG_MODEL_MS
    assert runs == 3  # the warm-up, then runs until one is under BIG_MODEL_MS


def test_a_big_model_is_timed_for_a_while_and_stays_big(models_dir):
    ms, runs = _time(models_dir, [40.0, 50.0, 50.0] + [15.0] * 100)
    assert ms >= 15.0
    # runs for TIMING_S (0.15 s): past the busy start (the first two), not for ever
    assert 5 <= runs <= 1 + sessions.TIMING_S * 1000 / 15 + 1


def test_a_plan_measured_the_old_way_is_measured_anew(models_dir, tmp_path, monkeypatch):
    import onnxruntime as ort

    bundle = tiny.write_bundle(models_dir, "timed")
    path = tmp_path / "model-timing.json"
    settings = config.load(env={}).models
    old = f"{bundle.manifest.model['sha256']}:2:{ort.__version__}:{settings.providers}"
    path.write_text(json.dumps({old: 13.07}), encoding="utf-8")
    _, idle = _open(bundle, sessions.Plans(path), monkeypatch, 6.5)  # measured: not the kept
    assert idle is not None
    assert json.loads(path.read_text(encoding="utf-8"))[
        sessions.Plans.key(bundle, settings)] == 6.5


def test_the_fastest_run_is_kept_not_the_last(models_dir):
    ms, _ = _time(models_dir, [40.0, 30.0, 12.0] + [30.0] * 100)
    assert 12.0 <= ms < 30.0


def test_a_warm_up_ten_times_the_line_is_big_without_more_runs(models_dir):
    # a model of seconds on one thread must not spend TIMING_S more of them at each install
    ms, runs = _time(models_dir, [sessions.BIG_MODEL_MS * sessions.CLEARLY_BIG + 5] + [1.0] * 9)
    assert ms >= sessions.BIG_MODEL_MS * sessions.CLEARLY_BIG and runs == 1


def test_the_timing_session_serves_only_where_plain_sessions_have_one_thread(
        models_dir, monkeypatch):
    from appliance.deadlines import Deadlines

    bundle = tiny.write_bundle(models_dir, "timed")
    made = []
    real = sessions.create_session

    def recording(path, settings, threads=None, spin=None, arena=True):
        made.append(real(path, settings, threads, spin, arena))
        return made[-1]

    monkeypatch.setattr(sessions, "cpu_count", lambda: 4)
    monkeypatch.setattr(sessions, "create_session", recording)
    monkeypatch.setattr(sessions, "_run_ms", lambda *_args: 2.0)
    for threads, reused in ((0, True), (2, False)):
        made.clear()
        settings = config.load(env={}, overrides={"models.intra_op_threads": threads}).models
        with Deadlines() as deadlines:
            plain, _ = sessions.open_sessions(bundle, settings, deadlines)
        assert (plain[0] is made[0]) is reused
        assert {s.get_session_options().intra_op_num_threads for s in plain} == \
            {1 if reused else threads}


def test_spinning_threads_stop_when_a_run_returns(models_dir):
    bundle = tiny.write_bundle(models_dir, "spun")
    spun = create_session(bundle.model_path, _settings(), threads=2, spin=True)
    still = create_session(bundle.model_path, _settings(), threads=2, spin=False)
    options = spun.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert still.get_session_options().get_session_config_entry(
        "session.intra_op.allow_spinning") == "0"
