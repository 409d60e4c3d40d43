import sys

import pytest

from appliance import config
from appliance.hardware.cameras import (
    CameraError,
    FolderCamera,
    NoCamera,
    PushCamera,
    RetryingCamera,
    open_camera,
)
from tests.conftest import image_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_folder_cycles_through_pictures(tmp_path):
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        (tmp_path / f"{i}.jpg").write_bytes(image_bytes(colour))
    (tmp_path / "notes.txt").write_text("not a picture")
    clock = Clock()
    camera = FolderCamera(str(tmp_path), 2.0, clock)
    first = camera.read()
    assert first[0] == 0 and first[1].getpixel((1, 1))[0] > 200
    clock.now = 2.5
    second = camera.read()
    assert second[0] == 1 and second[1].getpixel((1, 1))[1] > 200
    clock.now = 4.1
    assert camera.read()[1].getpixel((1, 1))[0] > 200  # round again


def test_folder_problems_say_what_to_do(tmp_path):
    with pytest.raises(CameraError, match="is missing: create it or fix camera.path"):
        FolderCamera(str(tmp_path / "absent"), 1.0).read()
    with pytest.raises(CameraError, match="has no pictures"):
        FolderCamera(str(tmp_path), 1.0).read()
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xffnot really")
    with pytest.raises(CameraError, match="broken.jpg cannot be read"):
        FolderCamera(str(tmp_path), 1.0).read()


def test_push_camera_keeps_the_newest():
    camera = PushCamera()
    assert camera.read() is None
    camera.push(image_bytes(size=(4, 4)))
    camera.push(image_bytes(size=(8, 8)))
    number, image = camera.read()
    assert number == 2 and image.size == (8, 8)
    camera.push(b"junk")
    with pytest.raises(CameraError, match="the pushed picture cannot be read"):
        camera.read()


def test_retrying_camera_recovers(tmp_path):
    opened = []

    def opener():
        opened.append(1)
        return FolderCamera(str(tmp_path), 1.0)

    camera = RetryingCamera(opener)
    with pytest.raises(CameraError):
        camera.read()
    (tmp_path / "a.png").write_bytes(image_bytes(fmt="PNG"))
    assert camera.read()[1].size == (64, 48)
    assert len(opened) == 2


def test_optional_drivers_missing_is_a_clear_error(monkeypatch):
    settings = config.load(env={}, overrides={"camera.kind": "v4l2",
                                              "camera.path": "/dev/video0"}).camera
    monkeypatch.setitem(sys.modules, "cv2", None)  # absent, whether installed or not
    with pytest.raises(CameraError, match="needs OpenCV"):
        open_camera(settings)
    settings.kind = "picamera2"
    with pytest.raises(CameraError, match="python3-picamera2|Pi camera cannot start"):
        open_camera(settings)
    settings.kind = "none"
    assert isinstance(open_camera(settings), NoCamera)


def test_row29_the_push_camera_decodes_within_the_servers_budget():
    from appliance.decodebudget import DecodeBudget

    camera = PushCamera(budget=DecodeBudget(total=1 << 20, per_decode=1 << 20))
    camera.push(image_bytes(size=(2000, 1000), fmt="PNG"))  # 8 MB of pixels to decode
    with pytest.raises(CameraError, match="this box decodes up to 1 MB per image"):
        camera.read()
