"""Screens are pure functions: golden images (exact, as luma's tests compare them) and the
layout rules that make them fill any screen."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance import screens
from tests.conftest import assert_golden

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
    assert_golden(image, GOLDEN / f"{name}-{size[0]}x{size[1]}.png")


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



# -- row 36: manifest text of any length and any characters never stalls a screen ---------

LONG = "A" * 200_000  # the 200 KB author of the attack run
CALLS = 12  # textlength calls for one fitted text: a binary search over at most ~2000


@pytest.fixture
def measured(monkeypatch):
    """The text of every `textlength` call, measured for real. Past 1000 calls it fails at
    once: a quadratic fit of a 200 KB text would run for hours before failing."""
    texts: list[str] = []
    real = screens.ImageDraw.ImageDraw.textlength

    def textlength(self, text, *args, **kwargs):
        texts.append(text)
        assert len(texts) <= 1000, "text fitting is not bounded"
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(screens.ImageDraw.ImageDraw, "textlength", textlength)
    return texts


@pytest.fixture
def drawn(monkeypatch):
    """(position, text) of every `draw.text` call, drawn for real."""
    texts: list[tuple[tuple[float, float], str]] = []
    real = screens.ImageDraw.ImageDraw.text

    def text(self, xy, content, *args, **kwargs):
        texts.append((xy, content))
        return real(self, xy, content, *args, **kwargs)

    monkeypatch.setattr(screens.ImageDraw.ImageDraw, "text", text)
    return texts


def _most_chars(size, em: float) -> int:
    """The most characters any line of a screen `size` wide could hold at `em` units."""
    return screens._bound(screens.font(screens.unit(size) * em), size[0])


@pytest.mark.parametrize("size", [(480, 800), (1920, 1080)])
def test_row36_a_200kb_author_draws_with_bounded_measurements(size, measured, drawn):
    caption = screens.Caption("sketch", LONG, "MIT")
    screen = screens.result(size, _photo(), "image-to-image", {}, _photo(), caption)
    assert screen.size == size
    assert len(measured) <= 3 * CALLS  # the whole, the licence, the author, the result
    assert max(map(len, measured)) <= _most_chars(size, 0.6) + 1  # never the whole author
    [(_, line)] = drawn
    # shortened with an ellipsis, and the licence stays in sight
    assert line.startswith("sketch  ·  AAAA") and line.endswith("…  ·  MIT")


def test_row36_status_screen_bounds_a_long_author_and_licence(measured, drawn):
    size = (480, 800)
    screens.status(size, screens.Status("10.0.0.2", "box", 8080, "sketch", LONG, "L" * 10**6))
    assert len(measured) <= 6 * CALLS
    assert max(map(len, measured)) <= _most_chars(size, 1) + 1
    values = [t for _, t in drawn if t.startswith(("AAA", "LLL"))]
    assert len(values) == 2 and all(t.endswith("…") for t in values)


def test_row36_error_screen_wraps_long_text_within_the_screen(measured, drawn):
    size = (480, 800)
    u = screens.unit(size)
    screens.error(size, "word " * 40_000, "x" * 200_000, None)
    what = [(xy, t) for xy, t in drawn if t.startswith("word")]
    action = [(xy, t) for xy, t in drawn if t.startswith("x")]
    assert 1 < len(what) < 20 and len(action) == 1
    assert what[-1][1].endswith("…") and action[0][1].endswith("…")
    assert action[0][0][1] + u * 1.2 <= size[1]  # the action line is on the screen
    assert len(measured) <= (len(what) + 2) * CALLS


@pytest.mark.parametrize("text", ["Ada\nLovelace", "tab\there\r\n\x00\x1b[31m", "x\ud800y",
                                  "张伟 — Zoë", "\u200b" * 5000])
def test_row36_any_characters_draw_on_one_line(text, drawn):
    caption = screens.Caption("sketch", text, text)
    screens.result((320, 180), _photo(), "image-to-image", {}, _photo(), caption, text)
    screens.status((320, 180), screens.Status("a", "b", 1, "m", text, text))
    screens.error((320, 180), text, text, None)
    for _, line in drawn:
        assert not any(ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in line), repr(line)


def _quadratic_fit(draw, text, face, width):
    """The fitting as it was before row 36: the reference for ordinary text."""
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def _greedy_wrap(draw, text, face, width):
    """The wrapping as it was before row 36: the reference for ordinary text."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=face) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def test_row36_ordinary_text_fits_and_wraps_as_before():
    rng = np.random.default_rng(36)
    draw = screens.ImageDraw.Draw(Image.new("RGB", (1, 1)))
    letters = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:'-·éß")
    for _ in range(300):
        text = "".join(rng.choice(letters, rng.integers(0, 80)))
        face = screens.font(float(rng.choice([8, 10.8, 16, 32.4, 54])))
        width = float(rng.uniform(10, 1900))
        assert screens._fit(draw, text, face, width) == _quadratic_fit(draw, text, face, width)
        before = _greedy_wrap(draw, text, face, width)
        if all(draw.textlength(line, font=face) <= width for line in before):
            assert screens._wrap(draw, text, face, width, 1000) == before
