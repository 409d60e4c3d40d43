"""The vision tasks' gallery screens: golden images (exact, as tests/test_screens.py compares
them), where things land on the screen, and hostile results that must neither raise nor
stall."""

import math
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw

from appliance import overlays, screens
from tests.conftest import assert_golden

GOLDEN = Path(__file__).parent / "golden"
SIZES = [(320, 180), (180, 320)]
NAMES = ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder", "left_elbow",
         "right_elbow", "left_hip", "right_hip", "left_knee", "right_knee")
EDGES = [["left_eye", "nose"], ["nose", "right_eye"], ["left_shoulder", "right_shoulder"],
         ["left_shoulder", "left_elbow"], ["right_shoulder", "right_elbow"],
         ["left_shoulder", "left_hip"], ["right_shoulder", "right_hip"],
         ["left_hip", "right_hip"], ["left_hip", "left_knee"], ["right_hip", "right_knee"]]
PLACES = [(60, 18), (55, 15), (65, 15), (48, 30), (72, 30), (42, 45), (78, 45), (52, 55),
          (68, 55), (50, 72), (70, 72)]


def _photo(size=(120, 80)) -> Image.Image:
    y, x = np.mgrid[0:size[1], 0:size[0]]
    pixels = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def _cut(size=(60, 90), colour=(40, 160, 90)) -> Image.Image:
    """A figure: an ellipse of colour on transparency."""
    cut = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(cut).ellipse((5, 5, size[0] - 6, size[1] - 1), fill=(*colour, 255))
    return cut


def _person(score=0.8, low=()) -> dict:
    return {"score": score, "box": [42, 15, 78, 72], "keypoints": [
        {"name": n, "x": x, "y": y, "score": 0.1 if n in low else 0.9}
        for n, (x, y) in zip(NAMES, PLACES, strict=True)]}


LINES = [{"text": "Gallery Box 2026", "confidence": 0.985,
          "box": [[10, 10], [100, 10], [100, 25], [10, 25]]},
         {"text": "Licence: CC-BY 4.0", "confidence": 0.9,
          "box": [[12, 40], [95, 42], [94, 55], [11, 53]]}]

SCREENS = {
    "objects": lambda size: overlays.boxes(size, _photo(), [
        {"label": "person", "score": 0.84, "box": [30, 10, 80, 75]},
        {"label": "dog", "score": 0.5, "box": [70, 40, 115, 78]}]),
    "cutout": lambda size: overlays.cutout(size, _cut(), _photo().rotate(180)),
    "cutout-plain": lambda size: overlays.cutout(size, _cut(), None),
    "pose": lambda size: overlays.skeleton(size, _photo(), [_person(low=("right_knee",))],
                                           EDGES),
    "text": lambda size: overlays.text_lines(size, _photo(), LINES),
}


@pytest.mark.parametrize("size", SIZES, ids=["landscape", "portrait"])
@pytest.mark.parametrize("name", sorted(SCREENS))
def test_golden(name, size):
    image = SCREENS[name](size)
    assert image.size == size and image.mode == "RGB"
    assert_golden(image, GOLDEN / f"{name}-{size[0]}x{size[1]}.png")


@pytest.fixture
def drawn(monkeypatch):
    """The text of every `draw.text` call, drawn for real."""
    texts: list[str] = []
    real = ImageDraw.ImageDraw.text

    def text(self, xy, content, *args, **kwargs):
        texts.append(content)
        return real(self, xy, content, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return texts


# -- boxes ----------------------------------------------------------------------------------

def test_boxes_follow_the_crop_and_carry_their_label(drawn):
    frame = Image.new("RGB", (200, 100), (0, 0, 0))
    screen = overlays.boxes((100, 100), frame, [
        {"label": "cat", "score": 0.914, "box": [90, 40, 110, 90]}])
    # the 200x100 frame is cropped to its middle 100x100: the box's left edge is at x = 40
    assert screen.getpixel((40, 70))[0] > 200 and screen.getpixel((20, 70))[0] < 50
    assert drawn == ["cat 91%"]


def test_boxes_draw_only_the_best_and_the_best_last(drawn):
    found = [{"label": f"n{i}", "score": i / 100, "box": [10, 10, 50, 50]} for i in range(60)]
    overlays.boxes((320, 180), _photo(), found)
    assert len(drawn) == overlays.MOST_BOXES
    assert drawn[-1] == "n59 59%" and "n9 9%" not in drawn


@pytest.mark.parametrize("detections", [
    [], None, "junk", [1, "x", None, {"box": "abcd"}, {"box": [1, 2, 3]}],
    [{"label": "x", "score": 0.9, "box": [math.nan, 0, 10, 10]}],
    [{"label": "x", "score": 0.9, "box": [1e9, 1e9, 2e9, 2e9]}],
    [{"label": "x", "score": 0.9, "box": [-500, -500, -400, -400]}],
    [{"label": "x", "score": 0.9, "box": [True, 0, 10, 10]}],
    [{"label": "x", "score": 0.9, "box": ["1", "2", "30", "40"]}],
], ids=["empty", "none", "string", "malformed", "nan", "far", "before", "bool", "strings"])
def test_boxes_that_cannot_be_drawn_leave_the_frame_alone(detections):
    screen = overlays.boxes((320, 180), _photo(), detections)
    assert ImageChops.difference(screen, screens.fill(_photo(), (320, 180))).getbbox() is None


@pytest.mark.parametrize("box", [[-1e300, -1e300, 1e300, 1e300], [1e300, 1e300, -5, -5],
                                 [60, 40, 60, 40], [-math.inf, 0, 50, 50]])
def test_huge_or_odd_boxes_draw_within_the_screen(box):
    screen = overlays.boxes((320, 180), _photo(), [{"label": 7, "score": "high", "box": box}])
    assert screen.size == (320, 180)


def test_ten_thousand_detections_with_long_labels_draw_quickly(drawn):
    rng = np.random.default_rng(13)
    label = "L" * 100_000  # one string, shared: ten thousand copies would be a gigabyte
    found = [{"label": label, "score": float(s), "box": [float(v) for v in box]}
             for s, box in zip(rng.random(10_000), rng.uniform(-50, 150, (10_000, 4)),
                               strict=True)]
    start = time.perf_counter()
    screen = overlays.boxes((320, 180), _photo(), found)
    assert time.perf_counter() - start < 2.0
    assert screen.size == (320, 180)
    assert 0 < len(drawn) <= overlays.MOST_BOXES
    assert all(len(t) < 100 and t.endswith("…") for t in drawn)


# -- cutout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [*SIZES, (1920, 1080)])
def test_the_figure_stands_centred_on_the_bottom_keeping_its_shape(size):
    figure = Image.new("RGBA", (100, 200), (255, 0, 0, 255))
    cut = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    cut.paste(figure, (50, 40))  # off-centre, with margins: trimmed before placing
    screen = overlays.cutout(size, cut, Image.new("RGB", (40, 30), (0, 0, 255)))
    red = np.asarray(screen)[..., 0] > 200
    rows, cols = np.flatnonzero(red.any(axis=1)), np.flatnonzero(red.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert rows[-1] == size[1] - 1  # feet on the bottom edge
    assert abs((cols[0] + cols[-1]) / 2 - (size[0] - 1) / 2) <= 1  # centred
    assert abs(width / height - 0.5) < 0.02  # the figure's aspect ratio
    assert height == pytest.approx(min(size[1] * 0.88, size[0] * 0.92 * 2), abs=1.5)


def test_an_empty_cutout_shows_the_backdrop_alone():
    backdrop = _photo()
    screen = overlays.cutout((320, 180), Image.new("RGBA", (50, 50), (9, 9, 9, 0)), backdrop)
    assert ImageChops.difference(screen, screens.fill(backdrop, (320, 180))).getbbox() is None


def test_without_a_backdrop_a_calm_gradient_not_black():
    screen = np.asarray(overlays.cutout((320, 180), _cut(), None), np.float32)
    assert screen[:5].mean() > 25 and screen[-5:, :20].mean() > screen[:5].mean()


@pytest.mark.parametrize("cut", [(1, 4000), (4000, 1), (1, 1)])
def test_extreme_cutouts_and_backdrops(cut):
    figure = Image.new("RGBA", cut, (200, 10, 10, 255))
    for size in SIZES:
        assert overlays.cutout(size, figure, Image.new("RGB", cut)).size == size
        assert overlays.cutout(size, figure, None).size == size


# -- skeleton -------------------------------------------------------------------------------

def test_only_confident_keypoints_are_drawn():
    frame = Image.new("RGB", (120, 80), (0, 0, 0))
    bare = overlays.skeleton((120, 80), frame, [], EDGES)
    sure = overlays.skeleton((120, 80), frame, [_person()], EDGES)
    unsure = overlays.skeleton((120, 80), frame, [_person(low=("right_knee",))], EDGES)
    knee = (70, 72)
    assert sure.getpixel(knee)[0] > 200  # an orange joint
    assert unsure.getpixel(knee) == bare.getpixel(knee) == (0, 0, 0)
    assert unsure.getpixel((69, 64)) == (0, 0, 0)  # nor the limb that reaches it
    assert unsure.getpixel((60, 55))[0] > 200  # the hips' line still is


@pytest.mark.parametrize("people, edges", [
    ([], []), (None, None), ("x", "y"), ([1, {"keypoints": "x"}], [["a"], [1, 2], "ab"]),
    ([{"keypoints": [{"name": "nose", "x": math.nan, "y": 1, "score": 1},
                     {"name": "left_eye", "x": 1e300, "y": -1e300, "score": 1},
                     {"name": 3, "x": 1, "y": 1, "score": 1}]}], [["nose", "left_eye"]]),
], ids=["empty", "none", "strings", "malformed", "nan-and-far"])
def test_skeletons_that_cannot_be_drawn_do_not_raise(people, edges):
    screen = overlays.skeleton((180, 320), _photo(), people, edges)
    assert screen.size == (180, 320)


def test_ten_thousand_people_draw_quickly():
    people = [_person(score=i / 10_000) for i in range(10_000)]
    start = time.perf_counter()
    overlays.skeleton((320, 180), _photo(), people, EDGES * 1000)
    assert time.perf_counter() - start < 2.0


# -- text -----------------------------------------------------------------------------------

def test_the_text_is_drawn_large_in_the_panel(drawn):
    screen = overlays.text_lines((320, 180), _photo(), LINES)
    assert drawn == ["Gallery Box 2026", "Licence: CC-BY 4.0"]
    # the panel is the right 45% of a landscape screen; the picture's text box is outlined
    assert screen.getpixel((300, 170)) == screens.PAPER
    # the top edge of the first line's box, as the picture (the left 55%) is cropped
    x, y = overlays.Crop((120, 80), (176, 180)).point(55, 10)
    assert max(screen.getpixel((round(x), round(y) + dy))[0] for dy in (0, 1)) > 200


def test_no_text_says_so(drawn):
    overlays.text_lines((180, 320), _photo(), [])
    assert drawn == ["No text found"]


def test_long_text_is_wrapped_and_shortened_within_the_panel(drawn):
    lines = [{"text": "word " * 50_000, "box": [[0, 0], [1, 0], [1, 1]]}] + \
        [{"text": f"line {i}", "box": None} for i in range(10_000)]
    start = time.perf_counter()
    screen = overlays.text_lines((320, 180), _photo(), lines)
    assert time.perf_counter() - start < 2.0
    assert screen.size == (320, 180)
    assert 1 < len(drawn) < 20 and drawn[0].startswith("word word")
    assert drawn[-1].endswith("…")


@pytest.mark.parametrize("lines", [
    None, "text", [1, {"text": 5}, {"text": "ok", "box": "x"}],
    [{"text": "nan", "box": [[math.nan, 0], [1, 0], [1, 1], [0, 1]]}],
    [{"text": "far", "box": [[1e300, 0], [-1e300, 0], [1, 1e300], [0, 1]]}],
    [{"text": "\x00\n\ud800 tab\t", "box": [[0, 0], [1, 0]]}],
], ids=["none", "string", "malformed", "nan", "far", "controls"])
def test_text_that_cannot_be_drawn_does_not_raise(lines):
    for size in SIZES:
        assert overlays.text_lines(size, _photo(), lines).size == size


# -- every function -------------------------------------------------------------------------

@pytest.mark.parametrize("frame", [(1, 4000), (4000, 1), (1, 1)])
@pytest.mark.parametrize("size", [*SIZES, (240, 240), (1, 1)])
def test_extreme_frames_and_screens(frame, size):
    picture = Image.new("RGB", frame, (90, 90, 90))
    box = [0, 0, frame[0], frame[1]]
    results = [
        overlays.boxes(size, picture, [{"label": "x", "score": 1, "box": box}]),
        overlays.skeleton(size, picture, [_person()], EDGES),
        overlays.text_lines(size, picture, LINES),
        overlays.cutout(size, _cut(), picture),
    ]
    assert all(r.size == size and r.mode == "RGB" for r in results)
