"""The kiosk loop with a folder camera and the file display: results, model switches,
captures, errors that keep the API up, idle attract mode, manual mode."""

import shutil

import pytest
from PIL import Image

from appliance.hardware.cameras import FolderCamera, RetryingCamera
from appliance.hardware.displays import FileDisplay
from appliance.standalone import StandaloneLoop
from tests.conftest import image_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "camera"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(image_bytes((255, 0, 0), size=(96, 64)))
    (folder / "b.jpg").write_bytes(image_bytes((0, 0, 255), size=(96, 64)))
    return folder


@pytest.fixture
def kiosk(services, pictures, tmp_path):
    clock = Clock()
    commands = []
    services.settings.standalone.gallery_dir = str(tmp_path / "gallery")
    camera = RetryingCamera(lambda: FolderCamera(str(pictures), 5.0, clock))
    display = FileDisplay(str(tmp_path / "screen"), (160, 90))
    kiosk = StandaloneLoop(services, camera, display, clock=clock, run_command=commands.append)
    kiosk.status_until = 0.0
    kiosk.commands = commands
    kiosk.test_clock = clock
    return kiosk


def _latest(kiosk) -> Image.Image:
    with Image.open(kiosk.display.latest()) as image:
        return image.convert("RGB").copy()


def test_a_frame_becomes_a_result_screen(kiosk):
    assert kiosk.tick() is not None
    assert kiosk.frames == 1 and kiosk.display.count == 1
    assert kiosk.tick() is None  # same frame: nothing new is drawn
    kiosk.test_clock.now += 5
    assert kiosk.tick() is not None and kiosk.frames == 2


def test_status_card_first(kiosk):
    kiosk.status_until = kiosk.test_clock.now + 5
    screen = kiosk.tick()
    assert screen.getpixel((5, 5)) == (24, 24, 27)


def test_next_and_previous_switch_the_active_model(kiosk, services):
    assert services.registry.active == "tiny-classify"
    assert kiosk.next_model() == "tiny-embed"
    assert kiosk.next_model() == "tiny-faces"
    assert kiosk.previous_model() == "tiny-embed"
    assert kiosk.caption().model == "tiny-embed"


def test_image_model_fills_the_screen(kiosk, services):
    services.registry.activate("tiny-negative")
    screen = kiosk.tick()
    assert screen.getpixel((80, 40))[1] > 200  # the negative of red is cyan


def test_capture_freezes_and_saves(kiosk, tmp_path):
    kiosk.tick()
    kiosk.capture()
    saved = list((tmp_path / "gallery").glob("capture-*.jpg"))
    assert len(saved) == 1
    kiosk.test_clock.now += 5  # a new picture arrives, but the capture stays
    assert kiosk.tick() is None
    kiosk.test_clock.now += kiosk.settings.capture_s
    assert kiosk.tick() is not None


def test_camera_gone_shows_the_error_then_recovers(kiosk, pictures, client):
    kiosk.tick()
    moved = pictures.with_name("away")
    shutil.move(pictures, moved)
    kiosk.test_clock.now += 5
    screen = kiosk.tick()
    assert kiosk.error is not None and "is missing" in kiosk.error[0]
    assert screen.getpixel((5, 5)) == (24, 24, 27)
    assert client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code == 200
    shutil.move(moved, pictures)
    kiosk.test_clock.now += 1.5  # past the first backoff
    kiosk.tick()
    assert kiosk.error is None and kiosk.frames == 2


def test_a_model_that_raises_shows_the_error_then_goes_on(kiosk, services, monkeypatch):
    from appliance import pipeline
    from appliance.errors import ModelRunError

    real = pipeline.infer_image

    def broken(*args, **kwargs):
        raise ModelRunError("model tiny-classify failed on this input: boom")

    monkeypatch.setattr(pipeline, "infer_image", broken)
    kiosk.tick()
    assert "boom" in kiosk.error[0]
    monkeypatch.setattr(pipeline, "infer_image", real)
    kiosk.test_clock.now += 5
    kiosk.tick()
    assert kiosk.error is None and kiosk.frames == 1


def test_idle_shows_the_attract_screen_with_captures(kiosk, pictures, tmp_path):
    for name in ("b.jpg",):
        (pictures / name).unlink()  # one picture: nothing changes any more
    kiosk.tick()
    kiosk.capture()
    kiosk.test_clock.now += kiosk.settings.idle_s + kiosk.settings.capture_s + 1
    screen = kiosk.tick()
    assert screen is not None and kiosk.display.count >= 2


def test_manual_mode_infers_only_on_capture(kiosk):
    assert kiosk.toggle_mode() == "manual"
    kiosk.tick()
    assert kiosk.frames == 0
    kiosk.capture()
    kiosk.test_clock.now += 5
    kiosk.tick()
    assert kiosk.frames == 1 and kiosk.frozen_until > kiosk.test_clock.now


def test_shutdown_runs_the_configured_command(kiosk):
    kiosk.shutdown()
    assert kiosk.commands == [["systemctl", "poweroff"]]


def test_the_loop_thread_runs_and_stops(kiosk):
    kiosk.settings.max_fps = 100.0
    kiosk.start()
    import time

    deadline = time.monotonic() + 5
    while kiosk.frames == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    kiosk.stop()
    assert kiosk.frames >= 1


def test_the_status_led_follows_the_loop(kiosk, pictures):
    states = []
    kiosk.indicate = states.append
    kiosk.tick()
    shutil.rmtree(pictures)
    kiosk.test_clock.now += 5
    kiosk.tick()
    assert states == ["ready", "error"]
