"""The edges task: thin lines by non-maximum suppression, the `line` weight, the model run at
the photo's aspect; in numpy and over HTTP with a tiny Sobel edge detector."""

import io

import numpy as np
import pytest
from PIL import Image

from appliance.bundle import read
from appliance.tasks import edges, get
from appliance.tasks.base import Context
from appliance.tasks.preprocess import Geometry
from tests import models as tiny

SPEC = {"range": [0.0, 1.0], "color": "gray", "layout": "NCHW", "invert": True,
        "max_side": 1024, "tensor": "", "ink": [0.1, 0.5]}


def ridge(distance: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """A blurred line: strength 1 on it, falling off as a Gaussian of the distance."""
    return np.exp(-distance ** 2 / (2 * sigma ** 2)).astype(np.float32)


GRID_Y, GRID_X = np.mgrid[0:80, 0:96].astype(np.float32)
RIDGES = {
    "vertical": ridge(GRID_X - 40.3),
    "horizontal": ridge(GRID_Y - 30.6),
    "diagonal": ridge((GRID_X - GRID_Y - 8) / np.sqrt(2)),
    "flat-topped": np.minimum(1.0, 2 * ridge(GRID_X - 40.0, 4.0)),  # a plateau 7 px wide
}


@pytest.mark.parametrize("name", RIDGES)
def test_non_maximum_suppression_leaves_a_line_one_pixel_wide(name):
    strength = RIDGES[name]
    axis = 0 if name == "horizontal" else 1
    assert ((strength[10:-10, 10:-10] > 0.5).sum(axis=axis) >= 5).all()  # thick before
    kept = edges.thin(strength) > 0.1
    across = kept[10:-10, 10:-10].sum(axis=axis)
    assert (across == 1).all(), across
    assert edges.thin(strength)[10:-10, 10:-10][kept[10:-10, 10:-10]].min() > 0.9  # on it


def test_the_direction_across_an_edge_follows_its_curvature():
    bins = edges.normal_bins(RIDGES["vertical"])
    assert (bins[10:-10, 38:43] == 0).all()  # across a vertical line: along x
    assert (edges.normal_bins(RIDGES["horizontal"])[28:33, 10:-10] == 2).all()
    assert (edges.normal_bins(RIDGES["diagonal"])[30, 36:41] == 3).all()  # (-1, 1)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 6])
def test_widen_draws_a_line_that_many_pixels_wide(width):
    line = np.zeros((20, 30), np.float32)
    line[:, 15] = 1.0
    drawn = edges.widen(line, width)
    assert ((drawn[5:-5] > 0).sum(axis=1) == width).all()


def test_hysteresis_keeps_weak_edges_joined_to_strong_ones_and_drops_specks():
    thinned = np.zeros((20, 40), np.float32)
    thinned[5, 2:30] = 0.2  # a weak line ...
    thinned[5, 30] = 0.8  # ... joined to a strong point
    thinned[12, 2:30] = 0.2  # a weak line on its own
    thinned[16, 10] = thinned[17, 20] = 0.3  # specks
    kept = edges.hysteresis(thinned, 0.1, 0.5)
    assert (kept[5, 2:31] == thinned[5, 2:31]).all()
    assert kept.sum() == pytest.approx(thinned[5].sum())


def _grown(thinned: np.ndarray, low: float, high: float) -> np.ndarray:
    """Hysteresis the slow way: grow the strong pixels through the weak ones until still."""
    weak, lines = thinned >= low, thinned >= high
    while True:
        padded = np.pad(lines, 1)
        grown = np.zeros_like(lines)
        for dy in range(3):
            for dx in range(3):
                grown |= padded[dy:dy + lines.shape[0], dx:dx + lines.shape[1]]
        grown &= weak
        if (grown == lines).all():
            return np.where(lines, thinned, 0)
        lines = grown


@pytest.mark.parametrize("seed", range(5))
def test_hysteresis_follows_weak_edges_however_long_as_growing_would(seed):
    rng = np.random.default_rng(seed)
    thinned = (rng.random((60, 70)) * (rng.random((60, 70)) > 0.45)).astype(np.float32)
    spiral = np.zeros((60, 70), np.float32)  # one weak line 160 pixels long ...
    spiral[10, 2:68] = spiral[10:41, 67] = spiral[40, 2:68] = 0.2
    spiral[40, 2] = 0.9  # ... strong at its far end
    for case in (thinned, spiral):
        assert np.array_equal(edges.hysteresis(case, 0.1, 0.8), _grown(case, 0.1, 0.8))
    assert (edges.hysteresis(spiral, 0.1, 0.8) > 0).sum() == 66 + 31 + 66 - 2


def test_ink_runs_from_nothing_below_low_to_black_from_high():
    assert edges.inked(np.array([0.05, 0.1, 0.3, 0.5, 0.9]), 0.1, 0.5).tolist() == \
        pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])


def test_the_model_runs_at_the_photos_aspect_within_its_pixels():
    assert edges.model_size((4000, 3000), 416 * 416) == (480, 352)
    assert edges.model_size((451, 300), 416 * 416) == (496, 336)
    assert edges.model_size((300, 4000), 416 * 416) == (112, 1504)
    assert edges.model_size((10, 10), 416 * 416) == (416, 416)
    assert edges.model_size((1, 5000), 1024) == (16, 64)
    for size in ((4000, 3000), (451, 300), (512, 512), (123, 77)):
        width, height = edges.model_size(size, 416 * 416)
        assert width * height <= 416 * 416 and width % 16 == height % 16 == 0


def _context(bundle, source: tuple[int, int], line: int) -> Context:
    return Context(bundle, Geometry(source, 1.0, 1.0), {"line": line, "format": "png"})


@pytest.fixture
def edges_bundle(tmp_path):
    spec = tiny.manifest("x", "edges")["input"]
    return tiny.write_bundle(tmp_path, "tiny-edges", "edges", input={**spec, "size": [32, 32]},
                             output={**tiny.manifest("x", "edges")["output"], "max_side": 128})


@pytest.mark.parametrize("line", [1, 2, 5])
def test_postprocess_draws_the_thinned_map_line_pixels_wide(edges_bundle, line):
    tensor = RIDGES["vertical"][None, None]
    image = get("edges").postprocess([tensor], _context(edges_bundle, (96, 80), line)).image
    dark = np.asarray(image) < 128
    assert image.size == (96, 80) and image.mode == "L"
    assert (dark[10:-10].sum(axis=1) == line).all()
    assert np.asarray(image)[dark].max() == 0  # full strength: black


def test_an_edge_map_must_be_grey_and_one_plane(edges_bundle):
    task = get("edges")
    assert task.check_output({**SPEC, "color": "RGB"}) == "color: an edge map is gray"
    assert task.check_output({**SPEC, "ink": [0.5, 0.5]}) == \
        "ink: [low, high] with 0 <= low < high"
    with pytest.raises(ValueError, match=r"one plane; the model's output is \(1, 3, 8, 8\)"):
        task.postprocess([np.zeros((1, 3, 8, 8), np.float32)],
                         _context(edges_bundle, (8, 8), 1))


def test_prepare_keeps_the_aspect_and_maps_back(edges_bundle):
    tensor, geometry = get("edges").prepare(Image.new("RGB", (64, 48)),
                                            read(edges_bundle.path).manifest.input)
    assert tensor.shape == (1, 3, 16, 32)  # 32 x 16: at most 32 x 32 pixels, 4:3 -> 2:1
    assert (geometry.scale_x, geometry.scale_y) == (0.5, 16 / 48)


# Over HTTP: the tiny Sobel detector on a photo of a soft vertical boundary.

@pytest.fixture
def models_dir(models_dir):
    spec = tiny.manifest("x", "edges")["input"]
    tiny.write_bundle(models_dir, "tiny-edges", "edges", input={**spec, "size": [32, 32]})
    return models_dir


def _boundary_photo() -> bytes:
    """64 x 48: black on the left, white on the right, blurred across x = 32."""
    x = np.arange(64, dtype=np.float32)
    row = 255 / (1 + np.exp(-(x - 32)))
    pixels = np.repeat(np.tile(row, (48, 1))[..., None], 3, axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _sketch(client, query: str = ""):
    return client.post(f"/v1/models/tiny-edges/infer{query}",
                       data={"image": (io.BytesIO(_boundary_photo()), "b.png")})


@pytest.mark.parametrize("line", [1, 3, 6])
def test_the_line_option_sets_the_width_over_http(client, line):
    response = _sketch(client, f"?line={line}")
    assert response.status_code == 200, response.get_json()
    dark = np.asarray(Image.open(io.BytesIO(response.data)).convert("L")) < 128
    assert dark.shape == (48, 64)
    widths = dark[8:-8].sum(axis=1)
    assert (widths == line).all(), widths
    assert set(np.nonzero(dark[24])[0]) <= set(range(28, 37))  # on the boundary


@pytest.mark.parametrize("value", ["0", "7", "-1"])
def test_a_line_out_of_range_is_400_naming_it(client, value):
    response = _sketch(client, f"?line={value}")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == \
        f"option line must be between 1 and 6, got {value}"


def test_a_line_that_is_not_a_whole_number_is_400(client):
    response = _sketch(client, "?line=2.5")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == \
        "option line must be a whole number, got '2.5'"


def test_the_default_line_is_two_pixels_and_the_answer_is_the_same_each_time(client):
    first, second = _sketch(client), _sketch(client)
    assert first.status_code == second.status_code == 200
    assert _pixels(first) == _pixels(second)
    dark = np.asarray(Image.open(io.BytesIO(first.data)).convert("L")) < 128
    assert (dark[8:-8].sum(axis=1) == 2).all()


def _pixels(response) -> bytes:
    return Image.open(io.BytesIO(response.data)).convert("L").tobytes()
