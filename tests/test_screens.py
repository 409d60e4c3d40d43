"""Screens are pure functions: golden images (exact, as luma's tests compare them) and the
layout rules that make them fill any screen."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from appliance import screens

GOLDEN = Path(__file__).parent / "golden"
CAPTION = screens.Caption("efficientnet-lite0", "Google Research", "Apache-2.0")
STATUS = screens.Status("192.168.1.20", "gallery-box", 8080, "sketch",
                        "Saining Xie and Zhuowen Tu", "MIT")


def _photo(size=(120, 80)) -> Image.Image:
    y, x = np.mgrid[0:size[1], 0:size[0]]
    pixels = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], -1)
    return Image.fromarray(pixels.astype(np.uint8))


SCREENS = {
    "classify": lambda size: screens.result(size, _photo(), "classify", {"predictions": [
        {"label": "tabby", "score": 0.8}, {"label": "tiger cat", "score": 0.15}]}, None,
        CAPTION),
    "sketch": lambda size: screens.result(size, _photo(), "image-to-image", {},
                                          _photo().convert("L").convert("RGB"), CAPTION),
    "faces": lambda size: screens.result(size, _photo(), "detect", {"detections": [
        {"label": "face", "score": 0.9, "box": [30, 20, 70, 60]}]}, None, CAPTION),
    "attract": lambda size: screens.attract(size, [_photo(), _photo().rotate(180)], 6.5,
                                            CAPTION, "Press the red button to keep it"),
    "status": lambda size: screens.status(size, STATUS),
    "error": lambda size: screens.error(size, "Camera not found",
                                        "Check the ribbon cable, then press any button",
                                        STATUS),
}


@pytest.mark.parametrize("size", [(320, 180), (180, 320)], ids=["landscape", "portrait"])
@pytest.mark.parametrize("name", sorted(SCREENS))
def test_golden(name, size):
    image = SCREENS[name](size)
    assert image.size == size and image.mode == "RGB"
    path = GOLDEN / f"{name}-{size[0]}x{size[1]}.png"
    if os.environ.get("UPDATE_GOLDENS") == "1" or not path.exists():
        image.save(path)  # review the new picture, then commit it
    with Image.open(path) as golden:
        assert ImageChops.difference(image, golden.convert("RGB")).getbbox() is None, \
            f"{path.name} changed: look at it, then UPDATE_GOLDENS=1 if it is right"


def test_results_fill_the_screen_without_bars():
    wide = screens.result((400, 100), _photo((50, 100)), "image-to-image", {},
                          _photo((50, 100)), None)
    corners = [wide.getpixel(p) for p in ((0, 0), (399, 0))]
    assert all(c != screens.PAPER for c in corners)


def test_long_text_is_shortened_not_overflowing():
    caption = screens.Caption("m" * 200, "a" * 200, "MIT")
    image = screens.result((240, 240), _photo(), "classify", {"predictions": [
        {"label": "x" * 300, "score": 1.0}]}, None, caption)
    assert image.size == (240, 240)


def test_box_positions_follow_the_crop():
    frame = Image.new("RGB", (200, 100), (0, 0, 0))
    screen = screens.result((100, 100), frame, "detect", {"detections": [
        {"label": "face", "score": 1.0, "box": [90, 40, 110, 60]}]}, None, None)
    # the 200x100 frame is cropped to its middle 100x100: the box sits at 40..60
    assert screen.getpixel((40, 50))[0] > 200 and screen.getpixel((20, 50))[0] < 50
