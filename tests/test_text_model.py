"""The `text` default bundle (PP-OCRv4 from rapidocr-onnxruntime's wheel), built by
tools/default_models.py, reading rendered signs through the real app; and the guard that
keeps every one of its characters through the labels file."""

import io
import shutil

import pytest

from appliance import bundle as bundles
from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN
from tools import text_model
from tools.text_model import LabelsError, check_labels

BUNDLE = config.CHECKOUT / "models" / "text"
built = pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                           reason="models/text missing: run `python tools/default_models.py "
                                  "--out models --only text`")


def test_characters_that_survive_the_labels_file_pass():
    check_labels(["a", "\u3000", "é", "字", " ", "'"])  # U+3000 is PP-OCRv4's character 5710


@pytest.mark.parametrize("label", ["\u2028", "\x85", "\x1c", "\r", "", "\x07", "a\u2029"])
def test_characters_the_labels_file_would_change_are_refused(label):
    with pytest.raises(LabelsError, match=r"character 2 "):
        check_labels(["a", label, "b"])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    shutil.copytree(BUNDLE, models / "text")
    settings = config.load(env={}, overrides={
        "models.dir": str(models), "state.dir": str(tmp_path_factory.mktemp("state"))})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        assert not services.registry.failures()
        yield create_app(settings, services).test_client()


def _read(client, picture, query: str = "", fmt: str = "PNG") -> dict:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    response = client.post(f"/v1/models/text/infer{query}", data=buffer.getvalue())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _squeezed(text: str) -> str:
    """The text without spaces: PP-OCRv4's recogniser (a Chinese-first dictionary) drops the
    space between English words on small or JPEG-softened lines, the float model as well."""
    return text.replace(" ", "")


@pytest.mark.default_models
@built
def test_the_bundle_keeps_every_character_and_its_three_graphs():
    bundle = bundles.read(BUNDLE)
    source = config.CHECKOUT / "models" / ".build" / "text.rec.fp32.onnx"
    from appliance.tasks.textlines import charset_from_model

    assert bundle.labels == charset_from_model(source)  # U+3000 included
    assert len(bundle.labels) == 6623 and "\u3000" in bundle.labels
    assert set(bundle.manifest.graphs) == {"cls", "rec"}
    assert bundle.manifest.attribution["license"] == "Apache-2.0"
    assert "PaddleOCR" in (BUNDLE / "LICENSE").read_text()
    assert "## rec: what was tried" in (BUNDLE / "REPORT.md").read_text()


SIGN = ["Gallery Box 2026", "Licence: CC-BY 4.0", "Open daily 10:00-18:00"]


@pytest.mark.default_models
@pytest.mark.slow
@built
def test_a_sign_is_read_line_by_line_in_its_pixels(client):
    answer = _read(client, text_model.sign())
    # PP-OCRv4's recogniser drops a space between words when a line's box moves by a pixel
    # or two (the INT8 detector's boxes do; its gate allows 2% of characters): every other
    # character must be exact, and in float the spaces too.
    read = [line["text"] for line in answer["lines"]]
    assert [_squeezed(text) for text in read] == [_squeezed(text) for text in SIGN]
    if bundles.read(BUNDLE).manifest.model["precision"] == "fp32":
        assert read == SIGN and answer["text"] == "\n".join(SIGN)
    assert all(line["confidence"] > 0.9 for line in answer["lines"])
    # The words start at 1/8 of the 800 px width; lines stack downwards.
    (x0, y0), _, (x1, y1), _ = answer["lines"][0]["box"]
    assert 80 < x0 < 120 and 350 < x1 < 740 and y0 < y1 < answer["lines"][1]["box"][0][1]
    jpeg = _read(client, text_model.sign(), fmt="JPEG")
    assert [_squeezed(line["text"]) for line in jpeg["lines"]] == [_squeezed(t) for t in SIGN]


@pytest.mark.default_models
@pytest.mark.slow
@built
def test_a_small_photo_a_tilted_sign_and_no_text(client):
    small = text_model.sign(tuple(SIGN[1::-1]), size=(480, 360))
    assert _squeezed(_read(client, small, fmt="JPEG")["text"]) == \
        _squeezed(f"{SIGN[1]}\n{SIGN[0]}")
    tilted = text_model.sign().rotate(3, expand=True, fillcolor=(90, 90, 90))
    assert [line["text"] for line in _read(client, tilted)["lines"]] == SIGN
    from PIL import Image

    assert _read(client, Image.new("RGB", (640, 480), (200, 200, 200)))["lines"] == []
    assert _read(client, text_model.sign(), "?min_confidence=1")["lines"] == []
