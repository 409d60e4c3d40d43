"""The kiosk page in real headless Chromium (Debian's chromium package) against a real
`appliance serve --standalone` whose display is configured landscape (1920x1080): on a
portrait screen and then, turned, on a landscape one, the page shows frames drawn for its own
size, whole, and looks like its golden screenshot."""

import io
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.browser import live_page

pytestmark = pytest.mark.slow
GOLDEN = Path(__file__).parent / "golden"
SKY = (70, 130, 200)  # the camera picture's top left, on every result screen
WAIT_S = 90.0  # a loaded machine is slow; nothing here measures time


def _camera_picture(folder: Path) -> Path:
    """A still for the folder camera: sky, sun and hills (sharp edges and flat colours, so a
    crop or a shift shows in the comparison)."""
    folder.mkdir()
    image = Image.new("RGB", (640, 480), SKY)
    draw = ImageDraw.Draw(image)
    draw.ellipse((400, 60, 520, 180), fill=(250, 190, 60))
    draw.polygon([(0, 330), (200, 250), (420, 340), (640, 270), (640, 480), (0, 480)],
                 fill=(60, 120, 70))
    image.save(folder / "still.png")
    return folder


def _shot(page) -> Image.Image:
    return Image.open(io.BytesIO(page.screenshot())).convert("RGB")


def _result_on_screen(page, size: tuple[int, int]) -> Image.Image:
    """The screenshot once the page shows a frame of `size` that is a result screen (the
    camera's sky in its corner), not the status card the box starts with."""
    page.wait_for_function(f"screen.naturalWidth === {size[0]} && "
                           f"screen.naturalHeight === {size[1]}", timeout=WAIT_S * 1000)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        shot = _shot(page)
        if max(abs(a - b) for a, b in zip(shot.getpixel((4, 4)), SKY, strict=True)) < 24:
            return shot
        page.wait_for_timeout(500)
    pytest.fail(f"no result screen on the {size[0]}x{size[1]} page")


def _differs(image: Image.Image, other: Image.Image) -> tuple[float, float]:
    """Mean absolute difference, and the share of pixels off by more than 32 in a channel."""
    assert image.size == other.size, f"{image.size} is not {other.size}"
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(other.convert("RGB"), np.int16))
    return float(diff.mean()), float((diff.max(axis=2) > 32).mean())


def assert_looks_like_golden(image: Image.Image, name: str) -> None:
    """`image` matches tests/golden/NAME within JPEG-decoding noise (written when missing, or
    with UPDATE_GOLDENS=1: look at it, then commit it)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDENS") == "1" or not path.exists():
        image.save(path, optimize=True)
    with Image.open(path) as golden:
        mean, off = _differs(image, golden)
    assert mean < 2.0 and off < 0.002, \
        f"{name} changed (mean {mean:.2f}, {off:.2%} of pixels off): look at it, then " \
        "UPDATE_GOLDENS=1 if it is right"


def _frame(url: str) -> Image.Image:
    with urllib.request.urlopen(f"{url}/v1/kiosk/frame.jpg") as response:  # loopback: no token
        return Image.open(io.BytesIO(response.read())).convert("RGB")


def _shown_whole(page, url: str, size: tuple[int, int]) -> Image.Image:
    """The page's screenshot once a result drawn for `size` is on it, checked to be that frame
    pixel for pixel (within decoding noise): nothing cropped, nothing letterboxed."""
    shot = _result_on_screen(page, size)
    mean, off = _differs(shot, _frame(url))
    assert mean < 2.0 and off < 0.002, f"the page does not show its frame whole ({mean:.2f})"
    return shot


def test_portrait_then_landscape_frames_drawn_for_the_page(models_dir, tmp_path):
    env = {"APPLIANCE_STANDALONE_ENABLED": "true", "APPLIANCE_STANDALONE_MAX_FPS": "5",
           "APPLIANCE_CAMERA_KIND": "folder", "APPLIANCE_CAMERA_INTERVAL_S": "100000",
           "APPLIANCE_CAMERA_PATH": str(_camera_picture(tmp_path / "camera")),
           "APPLIANCE_DISPLAY_KIND": "kiosk", "APPLIANCE_MODELS_ACTIVE": "tiny-classify"}
    with live_page(models_dir, tmp_path / "state", (480, 800), "/kiosk", env) as page:
        assert_looks_like_golden(_shown_whole(page, page.live_url, (480, 800)),
                                 "kiosk-480x800.png")
        page.set_viewport_size({"width": 800, "height": 480})  # the screen turned
        assert_looks_like_golden(_shown_whole(page, page.live_url, (800, 480)),
                                 "kiosk-800x480.png")
