"""A power cut during a fit (issue 15), with real processes: `kill -9` while an example is
being stored or the refitted bundle written, then a restart: the previous fit (or the
whole new one) serves, every example kept is whole, and teaching goes on."""

import json
import os
import signal
import threading

import numpy as np
import pytest

from appliance import bundle as bundles
from tests.conftest import ADMIN, image_bytes
from tests.test_api_teach import COLOURS, _shade
from tools.live_server import LiveServer, post_image, request

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "image/jpeg"}
ENV = {"APPLIANCE_TEACH_EMBEDDER": "tiny-embed"}


def _serve(models_dir, state):
    live = LiveServer(models_dir, state, env=ENV)
    live.wait_ready()
    return live


def _add(url: str, cls: str, seed: int) -> tuple[int, bytes, dict]:
    return request("POST", f"{url}/v1/models/colours/examples/{cls}",
                   image_bytes(_shade(COLOURS[cls], seed)), AUTH)


def _label(url: str, cls: str) -> str:
    status, body = post_image(f"{url}/v1/models/colours/infer",
                              image_bytes(_shade(COLOURS[cls], 99)))[:2]
    assert status == 200, body
    return json.loads(body)["predictions"][0]["label"]


def _kill_at(live, marker) -> None:
    """Kill the server (SIGKILL) the moment `marker()` holds, polled without sleeping (a
    fit of the tiny model lasts milliseconds), or once the request is over."""
    post = threading.Thread(target=_add, args=(live.url, "red", 50))
    post.start()
    while post.is_alive() and not marker():
        pass
    live.stop(signal.SIGKILL)
    post.join(30)


def _examples(state) -> dict[str, list[str]]:
    """Each class's whole examples on disk: a photo beside its embedding; asserts that
    every photo has one."""
    found = {}
    for folder in sorted((state / "teach" / "colours").iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        names = os.listdir(folder)
        photos = [n for n in names if n.endswith(".jpg")]
        for photo in photos:
            vector = np.load(folder / (photo[:-4] + ".npy"), allow_pickle=False)
            assert vector.shape == (3,)
        found[folder.name] = sorted(p[:-4] for p in photos)
    return found


@pytest.mark.parametrize("cut", ["storing", "fitting"])
def test_kill_9_during_a_fit_keeps_the_previous_fit_and_the_examples(models_dir, tmp_path,
                                                                     cut):
    state = tmp_path / "state"
    state.mkdir()
    (state / "admin-token").write_text(ADMIN + "\n")
    live = _serve(models_dir, state)
    for seed in range(3):
        for cls in ("red", "green"):
            assert _add(live.url, cls, seed)[0] == 201
    before = bundles.read(models_dir / "colours").manifest.version
    kept = _examples(state)
    red = state / "teach" / "colours" / "red"
    staging = models_dir / ".staging"
    markers = {"storing": lambda: len(os.listdir(red)) > 2 * len(kept["red"]),
               "fitting": lambda: staging.is_dir() and any(staging.iterdir())}
    _kill_at(live, markers[cut])

    again = _serve(models_dir, state)
    try:
        now = _examples(state)
        assert now["green"] == kept["green"]
        assert now["red"][:3] == kept["red"] and len(now["red"]) in (3, 4)
        served = bundles.read(models_dir / "colours")  # whole: checksums and manifest
        fitted = len(now["red"]) == 4 and served.manifest.version != before
        assert served.manifest.version == before or fitted
        assert served.head.classes == 2 and json.loads(
            (served.path / "report.json").read_text())["examples"] == 6 + fitted
        assert not staging.exists() or not any(staging.iterdir())
        assert _label(again.url, "red") == "red" and _label(again.url, "green") == "green"
        status, body, _ = _add(again.url, "red", 51)  # teaching goes on from what was kept
        assert status == 201, body
        assert json.loads(body)["classes"] == {"green": 3, "red": len(now["red"]) + 1}
    finally:
        again.stop()
