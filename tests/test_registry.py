import os

import pytest

from appliance import config
from appliance.errors import NotFound, Unavailable
from appliance.registry import Registry
from tests import models as tiny


def _registry(tmp_path, models_dir, **overrides) -> Registry:
    settings = config.load(env={}, overrides={
        "models.dir": str(models_dir), "state.dir": str(tmp_path / "state"),
        "models.intra_op_threads": 1, **overrides})
    return Registry(settings)


def test_loads_every_bundle_and_picks_the_first_active(tmp_path, models_dir):
    with _registry(tmp_path, models_dir) as registry:
        assert not registry.ready
        registry.load_all()
        assert registry.ready
        assert registry.names() == ["tiny-classify", "tiny-embed", "tiny-faces", "tiny-negative"]
        assert registry.active == "tiny-classify"


def test_a_broken_bundle_leaves_the_others_serving(tmp_path, models_dir):
    (models_dir / "tiny-embed" / "model.onnx").write_bytes(b"garbage")
    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        assert registry.ready
        assert sorted(registry.runners()) == ["tiny-classify", "tiny-faces", "tiny-negative"]
        assert "sha256 is" in registry.failures()["tiny-embed"].error
        with pytest.raises(Unavailable, match="tiny-embed is installed but cannot serve"):
            registry.get("tiny-embed")
        described = {e["name"]: e for e in registry.describe()}
        assert described["tiny-embed"]["status"] == "failed"
        assert described["tiny-classify"]["status"] == "ready"


def test_model_that_fails_warm_up(tmp_path, models_dir):
    spec = tiny.manifest("x", "classify")["input"]
    tiny.write_bundle(models_dir, "wrong-input", input={**spec, "name": "pixels"})
    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        assert "has no input 'pixels'" in registry.failures()["wrong-input"].error


def test_folder_and_manifest_names_must_agree(tmp_path, models_dir):
    os.rename(models_dir / "tiny-embed", models_dir / "other-name")
    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        assert "rename one" in registry.failures()["other-name"].error


def test_unknown_model_lists_the_installed_names(tmp_path, models_dir):
    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        with pytest.raises(NotFound, match="no model named 'nope': installed models are "
                                           "tiny-classify, tiny-embed, tiny-faces, tiny-negative"):
            registry.get("nope")


def test_still_loading_is_unavailable(tmp_path, models_dir):
    registry = _registry(tmp_path, models_dir)
    with pytest.raises(Unavailable, match="still loading"):
        registry.get("nope")


def test_every_model_broken_is_not_ready(tmp_path, models_dir):
    for name in ("tiny-classify", "tiny-embed", "tiny-faces", "tiny-negative"):
        (models_dir / name / "model.onnx").write_bytes(b"x")
    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        assert registry.loaded and not registry.ready
        with pytest.raises(Unavailable, match="no model is serving"):
            registry.get_active()


def test_missing_models_dir(tmp_path):
    with _registry(tmp_path, tmp_path / "absent") as registry:
        registry.load_all()
        assert registry.names() == [] and not registry.ready


def test_activate_survives_a_restart(tmp_path, models_dir):
    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        assert registry.activate("tiny-negative") is None
        with pytest.raises(NotFound):
            registry.activate("nope")
    with _registry(tmp_path, models_dir) as again:
        again.load_all()
        assert again.active == "tiny-negative"


def test_activate_on_an_unwritable_state_dir_warns(tmp_path, models_dir):
    # A state path under a plain file cannot be written, even by root.
    (tmp_path / "blocker").write_text("")
    overrides = {"state.dir": str(tmp_path / "blocker" / "state")}
    with _registry(tmp_path, models_dir, **overrides) as registry:
        registry.load_all()
        warning = registry.activate("tiny-embed")
        assert registry.active == "tiny-embed"
        assert warning.startswith("active model set, but not saved for the next start")


def test_configured_active_model_wins(tmp_path, models_dir):
    with _registry(tmp_path, models_dir, **{"models.active": "tiny-embed"}) as registry:
        registry.load_all()
        assert registry.active == "tiny-embed"


def _bright():
    import numpy as np

    return np.ones((1, 3, tiny.SIZE, tiny.SIZE), np.float32)


def test_row33_overruns_are_reported_and_a_repeat_offender_stops_serving(tmp_path,
                                                                        models_dir, caplog):
    from appliance.errors import DeadlineExceeded
    from appliance.registry import MAX_OVERRUNS

    tiny.write_bundle(models_dir, "endless", model=tiny.endless_model())
    with _registry(tmp_path, models_dir, **{"models.timeout_s": 0.3}) as registry:
        registry.load_all()
        runner = registry.get("endless")
        for count in range(1, MAX_OVERRUNS + 1):
            with pytest.raises(DeadlineExceeded):
                runner.run(_bright())
            if count < MAX_OVERRUNS:
                described = {e["name"]: e for e in registry.describe()}["endless"]
                assert (described["status"], described["overruns"]) == ("ready", count)
        described = {e["name"]: e for e in registry.describe()}["endless"]
        assert described["status"] == "failed"
        assert described["error"] == (
            "stopped serving: 3 runs passed the 0.3 s deadline (models.timeout_s); remove "
            "it (DELETE /v1/models/endless) or install a fixed version")
        with pytest.raises(Unavailable, match="endless is installed but cannot serve"):
            registry.get("endless")
        assert registry.get("tiny-classify").run(_bright())  # the others serve on
        registry.remove("endless")
        assert "endless" not in registry.names()
    assert "a run passed its 0.3 s deadline (models.timeout_s) and was stopped" in caplog.text


def test_row33_remove_stops_a_running_wedge_at_once(tmp_path, models_dir):
    import threading
    import time

    tiny.write_bundle(models_dir, "endless", model=tiny.endless_model())
    with _registry(tmp_path, models_dir, **{"models.timeout_s": 30.0}) as registry:
        registry.load_all()
        runner = registry.get("endless")
        outcome = []
        worker = threading.Thread(target=lambda: outcome.append(_raised(runner.run)))
        worker.start()
        while runner.busy_since is None:
            time.sleep(0.005)
        started = time.monotonic()
        registry.remove("endless")
        assert time.monotonic() - started < 1.0
        worker.join(2)
        assert outcome == [Unavailable]
        assert not (models_dir / "endless").exists()


def test_row33_close_stops_a_running_wedge(tmp_path, models_dir):
    import threading
    import time

    tiny.write_bundle(models_dir, "endless", model=tiny.endless_model())
    registry = _registry(tmp_path, models_dir, **{"models.timeout_s": 30.0})
    registry.load_all()
    runner = registry.get("endless")
    worker = threading.Thread(target=lambda: _raised(runner.run))
    worker.start()
    while runner.busy_since is None:
        time.sleep(0.005)
    started = time.monotonic()
    registry.close()
    worker.join(2)
    assert time.monotonic() - started < 1.5 and not worker.is_alive()


def _raised(run):
    try:
        run(_bright())
    except Exception as exc:
        return type(exc)
    return None


def test_refresh_keeps_the_sessions_when_only_labels_and_head_change(tmp_path, models_dir):
    import shutil

    with _registry(tmp_path, models_dir) as registry:
        registry.load_all()
        runner = registry.get("tiny-classify")
        staged = tmp_path / "staged"
        tiny.write_bundle(staged, "tiny-classify", labels=["rot", "grün", "blau", "dunkel"])
        swapped, replaced = registry.refresh(staged / "tiny-classify", "tiny-classify")
        assert swapped is runner and replaced  # the same sessions
        assert registry.get("tiny-classify").bundle.labels[0] == "rot"
        assert runner.bundle.path == models_dir / "tiny-classify"
        assert (models_dir / ".tiny-classify.last-good").is_dir()  # as an install keeps it
        shutil.rmtree(staged)
        tiny.write_bundle(staged, "tiny-classify", "classify", tiny.slow_classify_model(1))
        installed, _ = registry.refresh(staged / "tiny-classify", "tiny-classify")
        assert installed is not runner  # a new graph: an install, with its own sessions


def _tracked(monkeypatch, barrier=None) -> tuple[list, list]:
    """Record, at each bundle's opening and each timing run, which bundles were opening."""
    import threading

    from appliance import sessions

    opening, lock, opened_with, timed_with = set(), threading.Lock(), [], []
    open_one, run_ms = Registry._open, sessions._run_ms

    def tracking_open(self, bundle):
        with lock:
            opening.add(bundle.name)
            opened_with.append(set(opening))
        try:
            if barrier is not None:
                barrier.wait()  # breaks (fails the load) unless another opens at once
            return open_one(self, bundle)
        finally:
            with lock:
                opening.discard(bundle.name)

    def tracking_run_ms(session, bundle, *args):
        with lock:
            timed_with.append((bundle.name, set(opening)))
        return run_ms(session, bundle, *args)

    monkeypatch.setattr(Registry, "_open", tracking_open)
    monkeypatch.setattr(sessions, "_run_ms", tracking_run_ms)
    return opened_with, timed_with


def _two_cores(monkeypatch) -> None:
    from appliance import sessions

    monkeypatch.setattr(sessions, "cpu_count", lambda: 2)  # idle sessions: a timing run


def test_a_first_start_times_each_model_alone(tmp_path, models_dir, monkeypatch):
    _two_cores(monkeypatch)
    opened_with, timed_with = _tracked(monkeypatch)
    with _registry(tmp_path, models_dir, **{"models.sessions": 1}) as registry:
        registry.load_all()
        assert len(registry.runners()) == 4
    assert {name for name, _ in timed_with} == {"tiny-classify", "tiny-embed", "tiny-faces",
                                                 "tiny-negative"}
    assert all(others == {name} for name, others in timed_with)
    assert all(len(together) == 1 for together in opened_with)


def test_later_starts_load_two_models_at_once_in_the_folders_order(tmp_path, models_dir,
                                                                  monkeypatch):
    import threading

    _two_cores(monkeypatch)
    with _registry(tmp_path, models_dir, **{"models.sessions": 1}) as registry:
        registry.load_all()  # the first start keeps each model's timing
    opened_with, timed_with = _tracked(monkeypatch, threading.Barrier(2, timeout=30))
    with _registry(tmp_path, models_dir, **{"models.sessions": 1}) as registry:
        registry.load_all()
        assert registry.failures() == {}
        assert list(registry.runners()) == ["tiny-classify", "tiny-embed", "tiny-faces",
                                            "tiny-negative"]
    assert timed_with == [] and max(len(together) for together in opened_with) == 2
