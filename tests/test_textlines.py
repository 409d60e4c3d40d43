"""Tests of appliance.tasks.textlines: the text reader's numpy/Pillow pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from appliance.tasks import textlines as tl


def _rect_corners(cx: float, cy: float, w: float, h: float, deg: float) -> np.ndarray:
    """Corners of a w x h rectangle centred at (cx, cy), turned deg degrees."""
    a = math.radians(deg)
    u = np.array([math.cos(a), math.sin(a)])
    v = np.array([-math.sin(a), math.cos(a)])
    c = np.array([cx, cy])
    return np.array([c - u * w / 2 - v * h / 2, c + u * w / 2 - v * h / 2,
                     c + u * w / 2 + v * h / 2, c - u * w / 2 + v * h / 2])


def _fill(shape: tuple[int, int], corners: np.ndarray, value: float = 0.9) -> np.ndarray:
    """A map with value inside a convex quad (pixel centres), 0 elsewhere."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    inside = np.ones(shape, dtype=bool)
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        inside &= (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0]) >= 0
    out = np.zeros(shape, dtype=np.float32)
    out[inside] = value
    return out


def _corner_error(found: np.ndarray, expected: np.ndarray) -> float:
    """Largest distance from an expected corner to its nearest found corner."""
    d = np.hypot(*(found[None, :, :] - expected[:, None, :]).transpose(2, 0, 1))
    return float(d.min(axis=1).max())


def test_hull_of_square_with_inner_points() -> None:
    pts = np.array([[0, 0], [4, 0], [4, 4], [0, 4], [2, 2], [1, 3], [2, 0]])
    hull = tl.convex_hull(pts)
    assert sorted(map(tuple, hull.tolist())) == [(0, 0), (0, 4), (4, 0), (4, 4)]


def test_min_area_rect_of_rotated_rectangle() -> None:
    corners = _rect_corners(50, 40, 60, 10, 30)
    inner = corners.mean(axis=0) + np.random.default_rng(0).uniform(-3, 3, (20, 2))
    rect, side = tl.min_area_rect(np.vstack([corners, inner]))
    assert side == pytest.approx(10, abs=1e-4)
    assert _corner_error(rect, corners) < 1e-3


def test_grow_rect_adds_offset_on_every_side() -> None:
    corners = _rect_corners(0, 0, 40, 10, 0)
    grown, side = tl.grow_rect(corners.astype(np.float32), 1.6)
    d = 40 * 10 * 1.6 / 100
    assert side == pytest.approx(10 + 2 * d, rel=1e-5)
    assert _corner_error(grown, _rect_corners(0, 0, 40 + 2 * d, 10 + 2 * d, 0)) < 1e-3


def test_connected_runs_counts_8_connected_components() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal: one component
    mask[5:7, 5:9] = True
    mask[9, 0] = True
    assert len(tl.connected_runs(mask)) == 3


def test_db_boxes_find_two_rectangles_one_rotated() -> None:
    shape = (200, 300)
    flat = _rect_corners(80, 50, 100, 20, 0)
    tilted = _rect_corners(180, 140, 120, 24, 15)
    prob = np.maximum(_fill(shape, flat), _fill(shape, tilted))
    found = tl.db_boxes(prob, (300, 200))
    assert len(found) == 2
    for expected in (flat, tilted):
        w = np.hypot(*(expected[1] - expected[0]))
        h = np.hypot(*(expected[3] - expected[0]))
        # The dilation adds about one pixel to the right and below.
        d = (w + 1) * (h + 1) * 1.6 / (2 * (w + h + 2))
        angle = math.degrees(math.atan2(*(expected[1] - expected[0])[::-1]))
        center = expected.mean(axis=0) + 0.5
        grown = _rect_corners(*center, w + 1 + 2 * d, h + 1 + 2 * d, angle)
        errors = [_corner_error(box, grown) for box, _ in found]
        assert min(errors) <= 1.5
    # The 2x2 dilation puts a rim of zeros inside the scored box.
    assert all(0.7 < score <= 0.9 for _, score in found)


def test_empty_map_gives_no_boxes() -> None:
    assert tl.db_boxes(np.zeros((64, 64), np.float32), (64, 64)) == []


def test_sort_boxes_reads_rows_left_to_right() -> None:
    def box(x: float, y: float) -> np.ndarray:
        return np.array([[x, y], [x + 10, y], [x + 10, y + 5], [x, y + 5]])
    boxes = [box(100, 52), box(0, 50), box(50, 0), box(0, 3)]
    order = [tuple(b[0]) for b in tl.sort_boxes(boxes)]
    assert order == [(0, 3), (50, 0), (0, 50), (100, 52)]


def test_ctc_decode_collapses_repeats_and_blanks() -> None:
    labels = ["blank", "a", "b", " "]
    steps = [1, 1, 0, 1, 2, 2, 0, 0, 3, 2]
    probs = np.full((1, len(steps), 4), 0.1, dtype=np.float32)
    for t, c in enumerate(steps):
        probs[0, t, c] = 0.7
    (text, conf), = tl.ctc_decode(probs, labels)
    assert text == "aab b"
    assert conf == pytest.approx(0.7)


def test_ctc_decode_of_only_blanks_is_empty() -> None:
    probs = np.zeros((1, 5, 3), np.float32)
    probs[..., 0] = 1.0
    assert tl.ctc_decode(probs, ["blank", "a", " "]) == [("", 0.0)]


def test_load_charset_adds_blank_and_space(tmp_path: Path) -> None:
    path = tmp_path / "chars.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    assert tl.load_charset(path) == ["blank", "a", "b", " "]


def test_crop_of_rotated_quad_is_upright() -> None:
    img = Image.new("RGB", (200, 200), "white")
    quad = _rect_corners(100, 100, 120, 30, -20)
    # Paint the quad's left half black: the crop's left half must be dark.
    left = np.array([quad[0], (quad[0] + quad[1]) / 2, (quad[3] + quad[2]) / 2, quad[3]])
    ImageDraw.Draw(img).polygon([tuple(p) for p in left], fill="black")
    crop = np.asarray(tl.crop_quad(img, quad).convert("L"), dtype=float)
    assert abs(crop.shape[1] - 120) <= 1 and abs(crop.shape[0] - 30) <= 1
    w = crop.shape[1]
    assert crop[3:-3, 3:w // 2 - 3].mean() < 30
    assert crop[3:-3, w // 2 + 3:-3].mean() > 225


def test_tall_crop_is_turned() -> None:
    img = Image.new("RGB", (100, 100), "white")
    crop = tl.crop_quad(img, np.array([[10, 10], [20, 10], [20, 60], [10, 60]]))
    assert crop.size == (50, 10)


def test_cls_flip_needs_180_above_threshold() -> None:
    probs = np.array([[0.05, 0.95], [0.15, 0.85], [0.99, 0.01]])
    assert tl.cls_flip(probs, 0.9) == [True, False, False]


def test_rec_tensor_width_follows_widest_crop() -> None:
    crops = [Image.new("RGB", (480, 24)), Image.new("RGB", (40, 40))]
    tensor = tl.rec_tensor(crops)
    assert tensor.shape == (2, 3, 48, 960)
    assert tensor.dtype == np.float32
    # The square crop fills 48 columns; the rest is zero padding.
    assert np.all(tensor[1, :, :, 48:] == 0)


def test_det_preprocess_sizes_are_multiples_of_32() -> None:
    det = tl.det_preprocess(Image.new("RGB", (640, 480), "white"))
    assert det.tensor.shape == (1, 3, 736, 992)
    assert det.tensor.max() == pytest.approx(1.0)


def test_det_preprocess_survives_a_1x4000_image() -> None:
    det = tl.det_preprocess(Image.new("RGB", (4000, 1)))
    _, _, h, w = det.tensor.shape
    assert h % 32 == 0 and w % 32 == 0 and max(h, w) <= tl.DET_HARD_MAX_SIDE


TEXT = Path(__file__).resolve().parent.parent / "models" / "text"


@pytest.mark.default_models
def test_reads_rendered_text_with_real_models() -> None:
    """The pipeline, outside the box, on the default text bundle's three graphs (PP-OCRv4)."""
    if not (TEXT / "manifest.json").is_file():
        pytest.skip("models/text missing: run `make models`")
    import onnxruntime as ort

    from appliance import bundle as bundles

    found = bundles.read(TEXT)

    def run(path: Path):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        key = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {key: x})

    labels = ["blank", *found.labels, " "]
    img = Image.new("RGB", (640, 240), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=40)
    draw.text((20, 40), "Gallery Box 2026", fill="black", font=font)
    draw.text((20, 140), "Licence: CC-BY 4.0", fill="black", font=font)
    models = (run(found.path / found.manifest.model["file"]), run(found.graph_path("cls")),
              run(found.graph_path("rec")))
    lines = tl.read(img, *models, labels)
    assert [line.text for line in lines] == ["Gallery Box 2026", "Licence: CC-BY 4.0"]
    # Upside down, the classifier turns the crops back: the first line read
    # is the lower line of the original.
    flipped = tl.read(img.rotate(180), *models, labels)
    assert flipped[0].text == "Licence: CC-BY 4.0"


def test_det_preprocess_caps_a_big_square_picture() -> None:
    """A plain 2000x2000 picture went to the detector whole: 300 MB and 4 s for nothing."""
    det = tl.det_preprocess(Image.new("RGB", (2000, 2000), (128, 128, 128)))
    assert det.tensor.shape[2:] == (1280, 1280)
    wide = tl.det_preprocess(Image.new("RGB", (6000, 1000)))
    assert max(wide.tensor.shape[2:]) <= tl.DET_HARD_MAX_SIDE == 2560
