"""The real default bundles, built by tools/default_models.py, on real photographs."""

import io

import numpy as np
import pytest
from PIL import Image

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN

pytestmark = [pytest.mark.default_models, pytest.mark.slow]
NAMES = ("efficientnet-lite0", "lite0-embed", "sketch", "faces")
CATS = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = config.CHECKOUT / "models"
    missing = [n for n in NAMES if not (models / n / "manifest.json").is_file()]
    if missing:
        pytest.skip(f"default bundles missing ({', '.join(missing)}): run `make models`")
    settings = config.load(env={}, overrides={
        "models.dir": str(models), "state.dir": str(tmp_path_factory.mktemp("state"))})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        assert not services.registry.failures()
        yield create_app(settings, services).test_client()


def _photo(name: str, fmt: str = "JPEG", **save) -> bytes:
    from skimage import data

    image = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def _labels(client, data: bytes, top_k: int = 5) -> list[str]:
    response = client.post(f"/v1/models/efficientnet-lite0/infer?top_k={top_k}", data=data)
    assert response.status_code == 200, response.get_json()
    return [p["label"] for p in response.get_json()["predictions"]]


def test_readiness_and_listing(client):
    assert client.get("/readyz").status_code == 200
    models = {m["name"]: m for m in client.get("/v1/models").get_json()["models"]}
    assert set(models) == set(NAMES)
    assert models["sketch"]["license"] == "MIT"
    assert models["efficientnet-lite0"]["license"] == "Apache-2.0"


@pytest.mark.parametrize(("photo", "expected"), [
    ("chelsea", CATS), ("coffee", {"espresso"}), ("camera", {"tripod"})])
def test_classify_real_photos(client, photo, expected):
    assert _labels(client, _photo(photo))[0] in expected


def test_the_cat_is_a_cat_in_every_format(client):
    for fmt in ("PNG", "WEBP", "BMP", "GIF"):
        assert set(_labels(client, _photo("chelsea", fmt), 3)) & CATS, fmt


def test_exif_orientation_6_gives_the_upright_answer(client):
    from skimage import data

    upright = Image.fromarray(data.chelsea())
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", exif=exif, quality=95)
    rotated = client.post("/v1/models/efficientnet-lite0/infer", data=buffer.getvalue())
    plain = client.post("/v1/models/efficientnet-lite0/infer", data=_photo("chelsea",
                                                                           quality=95))
    assert rotated.get_json()["predictions"][0]["label"] == \
        plain.get_json()["predictions"][0]["label"]


def test_faces_found_in_the_senders_pixels(client):
    body = client.post("/v1/models/faces/infer", data=_photo("astronaut")).get_json()
    (face,) = body["detections"]
    assert face["label"] == "face" and face["score"] > 0.8
    x0, y0, x1, y1 = face["box"]
    assert 150 < x0 < 200 and 60 < y0 < 110 and 250 < x1 < 300 and 150 < y1 < 200
    assert client.post("/v1/models/faces/infer", data=_photo("coffee")).get_json()[
        "detections"] == []


def test_face_boxes_follow_a_reduced_scale_jpeg_decode(client):
    from skimage import data

    big = Image.fromarray(data.astronaut()).resize((2048, 2048))
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    (face,) = client.post("/v1/models/faces/infer", data=buffer.getvalue()).get_json()[
        "detections"]
    assert 600 < face["box"][0] < 800 and 1000 < face["box"][2] < 1200  # 4x the 512 px box


def _embed(client, data: bytes) -> np.ndarray:
    body = client.post("/v1/models/lite0-embed/infer", data=data).get_json()
    assert body["dim"] == 1280
    return np.asarray(body["embedding"])


def test_embeddings_are_unit_vectors_that_know_a_cat(client):
    from skimage import data

    cat = _embed(client, _photo("chelsea"))
    crop = Image.fromarray(data.chelsea()).crop((30, 20, 420, 290))
    buffer = io.BytesIO()
    crop.save(buffer, "JPEG")
    same_cat = _embed(client, buffer.getvalue())
    coffee = _embed(client, _photo("coffee"))
    assert np.linalg.norm(cat) == pytest.approx(1.0, abs=1e-4)
    assert cat @ same_cat > 0.8
    assert cat @ same_cat > cat @ coffee + 0.2


def test_sketch_is_dark_lines_on_white_at_the_input_aspect(client):
    from skimage import data
    from skimage.filters import gaussian, sobel

    response = client.post("/v1/models/sketch/infer", data=_photo("chelsea"))
    assert response.mimetype == "image/png"
    sketch = Image.open(io.BytesIO(response.data))
    assert sketch.size == (451, 300)
    ink = 255 - np.asarray(sketch.convert("L"), dtype=np.float64)
    assert ink.mean() < 80, "mostly white paper"
    assert (ink > 128).mean() > 0.01, "some dark lines"
    # HED draws object outlines, not fur: compare with the gradients of a blurred copy, and
    # with the same gradients moved away (a sketch of anything else would score like that).
    grey = np.asarray(Image.fromarray(data.chelsea()).convert("L"), np.float64) / 255
    edges = sobel(gaussian(grey, 2))
    aligned = np.corrcoef(ink.ravel(), edges.ravel())[0, 1]
    shifted = np.corrcoef(ink.ravel(), np.roll(edges, 40, axis=(0, 1)).ravel())[0, 1]
    assert aligned > 0.4 and aligned > 5 * abs(shifted)


def _agreement_inputs(name: str):
    from appliance import bundle as bundles
    from tools import calibration, photos

    models = config.CHECKOUT / "models"
    source = models / ".build" / f"{name}.fp32.onnx"
    if not source.is_file():
        pytest.skip(f"float source {source} missing: run `make models`")
    shipped = bundles.read(models / name)
    # The held-out photos the converter gated this model on: faces for the face detector.
    images = photos.face_held_out() if name == "faces" else photos.held_out()
    held = calibration.prepare(images, shipped.manifest.task, shipped.manifest.input,
                               "held-out")
    return source, shipped, held


@pytest.mark.parametrize(("name", "metric", "limit"), [
    ("efficientnet-lite0", "top1_agreement", 0.9), ("lite0-embed", "cosine_mean", 0.98),
    ("sketch", "psnr_db", 30.0), ("faces", "box_f1", 0.9)])
def test_int8_defaults_agree_with_their_float_source(name, metric, limit):
    from tools import gate
    from tools.convert import _outputs

    source, shipped, held = _agreement_inputs(name)
    if shipped.manifest.model["precision"] != "int8":
        pytest.skip(f"{name} shipped in float on this machine (see its REPORT.md)")
    reference = _outputs(source, held, shipped.manifest.input.name)
    candidate = _outputs(shipped.model_path, held, shipped.manifest.input.name)
    metrics = gate.judge(shipped.manifest.task, reference, candidate,
                         shipped.manifest.output, {}, shipped.manifest.input.size).metrics
    assert metrics[metric] >= limit, metrics
