"""End to end: the real `appliance serve` process (waitress) on a loopback port."""

import json
import signal
import threading
import time

import pytest

from appliance import config
from appliance.server import banner, waitress_options
from tests.conftest import photo_bytes
from tools.live_server import LiveServer, get, post_image

pytestmark = pytest.mark.slow


@pytest.fixture
def server(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path / "state") as live:
        live.wait_ready()
        yield live


def test_real_jpeg_over_http(server):
    status, body, headers = post_image(f"{server.url}/v1/models/tiny-classify/infer",
                                       photo_bytes())
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model"] == "tiny-classify"
    assert len(answer["predictions"]) == 3
    assert headers["Server"] == "appliance"


def test_served_by_waitress_with_json_errors(server):
    status, body, _ = post_image(f"{server.url}/v1/models/nope/infer", photo_bytes())
    assert status == 404
    assert "installed models are tiny-classify" in json.loads(body)["error"]["message"]
    status, body, _ = get(server.url + "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_banner_and_admin_token_file(server, tmp_path):
    text = "".join(server.output)
    assert "curl -F image=@photo.jpg" in text and "stop with Ctrl+C" in text
    token = (tmp_path / "state" / "admin-token").read_text().strip()
    assert token and token not in text


def test_sigterm_finishes_in_flight_requests(tmp_path):
    from tests import models as tiny

    folder = tmp_path / "slow-models"
    tiny.write_bundle(folder, "slow", model=tiny.slow_classify_model(matmuls=200))
    with LiveServer(folder, tmp_path / "state",
                    env={"APPLIANCE_MODELS_INTRA_OP_THREADS": "1"}) as live:
        live.wait_ready()
        results = []

        def call():
            results.append(post_image(f"{live.url}/v1/models/slow/infer", photo_bytes())[0])

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        _wait_for_queue(live.url, "slow")
        started = time.monotonic()
        assert live.stop(signal.SIGTERM) == 0
        for thread in threads:
            thread.join(30)
        assert results == [200, 200, 200, 200]
        assert time.monotonic() - started < 10
        assert "stopped" in "".join(live.output)


def _wait_for_queue(url: str, model: str) -> None:
    # Four requests: one running on the idle session, one on the worker, two queued (three
    # queued where there is no idle session).
    import re

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, body, _ = get(url + "/metrics")
        found = re.search(rf'appliance_queue_depth{{model="{model}"}} (\d+)', body.decode())
        if found and int(found.group(1)) >= 2:
            return
        time.sleep(0.01)
    raise AssertionError("requests never queued up")


def test_bad_port_is_a_one_line_error(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path / "a") as first:
        import subprocess
        import sys

        done = subprocess.run(
            [sys.executable, "-m", "appliance", "serve", "--host", "127.0.0.1", "--port",
             str(first.port), "--models-dir", str(models_dir)],
            capture_output=True, text=True, timeout=60,
            env={"APPLIANCE_STATE_DIR": str(tmp_path / "b"), "ORT_DISABLE_TELEMETRY": "1",
                 "APPLIANCE_DISCOVERY_ENABLED": "false"})
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1].startswith("appliance: error:")
        assert "in use" in done.stderr


def test_waitress_options_cap_every_body_at_the_largest_route_cap():
    settings = config.load(env={}, overrides={"server.max_upload_mb": 1.0,
                                              "models.max_install_mb": 0})
    options = waitress_options(settings, 12345)
    assert options["max_request_body_size"] == 12345
    assert options["threads"] == 8 and options["connection_limit"] == 256
    assert "efficientnet-lite0/infer" in banner(settings, 8080)


def test_a_display_that_cannot_open_is_a_clear_error_at_start(models_dir, tmp_path):
    import subprocess
    import sys

    sysfs_less = tmp_path / "fb9"
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "serve", "--standalone", "--host", "127.0.0.1",
         "--port", "0", "--models-dir", str(models_dir)],
        capture_output=True, text=True, timeout=60,
        env={"APPLIANCE_STATE_DIR": str(tmp_path / "s"), "ORT_DISABLE_TELEMETRY": "1",
             "APPLIANCE_DISCOVERY_ENABLED": "false", "APPLIANCE_DISPLAY_KIND": "framebuffer",
             "APPLIANCE_DISPLAY_PATH": str(sysfs_less)})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("appliance: error: framebuffer ") and "is a screen attached" in last


class _Registry:
    def __init__(self) -> None:
        self.loaded = threading.Event()

    def wait_loaded(self, timeout=None) -> bool:
        return self.loaded.wait(timeout)

    def runners(self) -> dict:
        return {}


def _announcer(monkeypatch, made: list):
    from types import SimpleNamespace

    from appliance import config, discovery
    from appliance.server import Announcer

    class Advertiser:
        def __init__(self, *args) -> None:
            made.append(args)

        def start(self, models) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(discovery, "Advertiser", Advertiser)
    settings = config.load(env={}, overrides={"discovery.enabled": True})
    return Announcer(SimpleNamespace(settings=settings, registry=_Registry()), 8080)


def test_a_box_stopping_before_its_models_load_is_never_announced(monkeypatch, caplog):
    made: list = []
    announcer = _announcer(monkeypatch, made)
    announcer.start()
    announcer.close()  # while the models still load: its thread ends without announcing
    assert made == [] and not announcer._thread.is_alive()
    assert "announced" not in caplog.text


def test_a_box_announces_once_its_models_are_loaded(monkeypatch, caplog):
    import logging

    made: list = []
    announcer = _announcer(monkeypatch, made)
    with caplog.at_level(logging.INFO, logger="appliance.server"):
        announcer.start()
        announcer.services.registry.loaded.set()
        announcer._thread.join(5)
        announcer.close()
    assert len(made) == 1 and "announced" in caplog.text
