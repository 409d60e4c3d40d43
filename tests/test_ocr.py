"""ocr: lines read by three real graphs (tests/models.py's tiny text bundle reads YMCK colour
bars) over HTTP, boxes in the sender's pixels, the min_confidence option, pictures without
text, a recogniser that disagrees with its labels, installs of multi-graph bundles, and the
gate's helpers."""

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from appliance import bundle as bundles
from appliance import imaging, tasks
from appliance.errors import BundleError
from appliance.tasks import ocr
from tests import models as tiny
from tests.conftest import ADMIN
from tools import gate

OCR = tasks.get("ocr")
AUTH = {"Authorization": f"Bearer {ADMIN}"}
FAINT = {"K": (90, 90, 90)}  # a worn black: read at about 0.72, under 0.9, over 0.5


@pytest.fixture
def text_dir(models_dir):
    """The models folder with tiny-text and tiny-text-turned (its classifier finds every
    line upside down) beside the four tiny bundles."""
    tiny.ocr_bundle(models_dir, "tiny-text")
    tiny.ocr_bundle(models_dir, "tiny-text-turned", cls=tiny.ocr_cls_model(upside_down=True))
    return models_dir


def _encoded(picture: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **save)
    return buffer.getvalue()


def _read(client, data: bytes, model: str = "tiny-text", query: str = ""):
    return client.post(f"/v1/models/{model}/infer{query}", data=data,
                       content_type="image/png" if data[:4] == b"\x89PNG" else "image/jpeg")


def _encloses(box: list[list[float]], band: list[int], margin: float) -> None:
    """`box` (four corners, clockwise from the top-left) holds `band` (x0, y0, x1, y1) with
    at most `margin` pixels to spare on each side: the detector's map was mapped back to
    the picture, not left in its own pixels."""
    (left, top), (right, top2), (right2, bottom), (left2, bottom2) = box
    assert (left, right, top, bottom) == (left2, right2, top2, bottom2), f"not upright: {box}"
    x0, y0, x1, y1 = band
    assert x0 - margin <= left <= x0 and y0 - margin <= top <= y0, (box, band)
    assert x1 <= right <= x1 + margin and y1 <= bottom <= y1 + margin, (box, band)


# -- reading over HTTP ---------------------------------------------------------------------

def test_lines_answered_with_text_confidence_and_four_corners(text_dir, client):
    picture, bands = tiny.ocr_picture(["YMCK", "KKYY"])
    response = _read(client, _encoded(picture))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == "tiny-text"
    assert [line["text"] for line in body["lines"]] == ["YMCK", "KKYY"]
    assert body["text"] == "YMCK\nKKYY"
    for line, band in zip(body["lines"], bands, strict=True):
        assert 0.9 < line["confidence"] <= 1.0
        _encloses(line["box"], band, margin=24)


def test_boxes_are_in_the_full_pictures_pixels_when_the_decoder_reduces_a_big_jpeg(
        text_dir, client):
    picture, bands = tiny.ocr_picture(["YMCK", "CK"], size=(6000, 4000), band=240,
                                      at=(600, 400))
    data = _encoded(picture, "JPEG", quality=90)
    decoded, full = imaging.decode_sized(data, 50_000_000, OCR.decode_hint(None))
    assert full == (6000, 4000) and decoded.size[0] < 6000, "the decode was not reduced"
    body = _read(client, data).get_json()
    assert [line["text"] for line in body["lines"]] == ["YMCK", "CK"]
    for line, band in zip(body["lines"], bands, strict=True):
        _encloses(line["box"], band, margin=240)


def test_a_line_the_classifier_finds_upside_down_is_turned_before_it_is_read(text_dir, client):
    picture, _ = tiny.ocr_picture(["YMCK"])
    assert _read(client, _encoded(picture)).get_json()["text"] == "YMCK"
    assert _read(client, _encoded(picture), "tiny-text-turned").get_json()["text"] == "KCMY"


def test_a_picture_without_text_answers_no_lines(text_dir, client):
    for picture in (Image.new("RGB", (320, 240), (255, 255, 255)),
                    Image.new("RGB", (1, 4000), (240, 240, 230))):
        response = _read(client, _encoded(picture))
        assert response.status_code == 200, response.get_json()
        assert (response.get_json()["lines"], response.get_json()["text"]) == ([], "")


def test_min_confidence_filters_the_lines(text_dir, client):
    picture, _ = tiny.ocr_picture(["YMC", "KK"], inks=FAINT)
    data = _encoded(picture)
    lines = _read(client, data).get_json()["lines"]  # the manifest's default: 0.5
    assert [line["text"] for line in lines] == ["YMC", "KK"]
    assert lines[0]["confidence"] > 0.9 > lines[1]["confidence"] > 0.5
    sure = _read(client, data, query="?min_confidence=0.9").get_json()
    assert ([line["text"] for line in sure["lines"]], sure["text"]) == (["YMC"], "YMC")
    assert len(_read(client, data, query="?min_confidence=0").get_json()["lines"]) == 2
    assert _read(client, data, query="?min_confidence=1").get_json()["lines"] == []


@pytest.mark.parametrize(("value", "message"), [
    ("1.5", "option min_confidence must be between 0 and 1, got 1.5"),
    ("-0.1", "option min_confidence must be between 0 and 1, got -0.1"),
    ("sure", "option min_confidence must be a number, got 'sure'"),
    ("nan", "option min_confidence must be a finite number, got 'nan'"),
])
def test_min_confidence_out_of_range_or_not_a_number_is_400_naming_it(text_dir, client, value,
                                                                      message):
    picture, _ = tiny.ocr_picture(["YMCK"])
    response = _read(client, _encoded(picture), query=f"?min_confidence={value}")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == message


@pytest.fixture
def bad_rec_dir(models_dir):
    """tiny-text with a recogniser of 5 classes where its 4 labels need 6, put in the models
    folder by hand (an install would have refused it: see test_probe.py)."""
    tiny.ocr_bundle(models_dir, "bad-rec", rec=tiny.ocr_rec_model(classes=5))
    return models_dir


def test_a_recogniser_that_disagrees_with_its_labels_is_named(bad_rec_dir, client):
    picture, _ = tiny.ocr_picture(["YMCK"])
    response = _read(client, _encoded(picture), "bad-rec")
    error = response.get_json()["error"]
    assert response.status_code >= 500 and error["code"] != "internal", error
    assert "bad-rec" in error["message"]
    assert "graph rec answers shape (1, 40, 5): 1 rows of 6 scores were expected" in error[
        "message"]


# -- installs of multi-graph bundles over HTTP ---------------------------------------------

def _archive(tmp_path, name: str, mutate=None, **graphs) -> bytes:
    found = tiny.ocr_bundle(tmp_path / "src", name, **graphs)
    if mutate:
        mutate(found.path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(found.path, arcname=name)
    return buffer.getvalue()


def _put(client, name: str, body: bytes):
    return client.put(f"/v1/models/{name}", data=body, headers=AUTH,
                      content_type="application/gzip")


def _not_installed(client, models_dir, name: str) -> None:
    assert client.get(f"/v1/models/{name}").status_code == 404
    assert not (models_dir / name).exists()
    staging = models_dir / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_a_text_bundle_installs_over_http_and_reads(client, tmp_path):
    response = _put(client, "new-text", _archive(tmp_path, "new-text"))
    assert response.status_code == 201, response.get_json()
    picture, _ = tiny.ocr_picture(["CMYK"])
    assert _read(client, _encoded(picture), "new-text").get_json()["text"] == "CMYK"


def _changed_rec(folder):
    (folder / "rec.onnx").write_bytes((folder / "rec.onnx").read_bytes() + b"\0")


def _garbage_rec(folder):
    (folder / "rec.onnx").write_bytes(b"\x08\x01this is not a model")
    manifest = json.loads((folder / bundles.MANIFEST).read_text())
    manifest["graphs"]["rec"]["sha256"] = bundles.file_sha256(folder / "rec.onnx")
    (folder / bundles.MANIFEST).write_text(json.dumps(manifest))


def _no_rec(folder):
    (folder / "rec.onnx").unlink()


@pytest.mark.parametrize(("mutate", "graphs", "message"), [
    (_changed_rec, {}, "new-text/rec.onnx: sha256 is "),
    (_changed_rec, {}, "the manifest's graphs.rec.sha256 says"),
    (_no_rec, {}, "rec.onnx: missing; manifest.json.graphs.rec.file names it"),
    (_garbage_rec, {}, "manifest.json.graphs.rec: onnxruntime cannot load rec.onnx"),
    (None, {"rec": tiny.ocr_rec_model(classes=5)}, "graph rec answers shape"),
])
def test_a_broken_second_graph_is_refused_at_install_and_nothing_installed(
        client, tmp_path, models_dir, mutate, graphs, message):
    response = _put(client, "new-text", _archive(tmp_path, "new-text", mutate, **graphs))
    assert response.status_code == 422, response.get_json()
    assert message in response.get_json()["error"]["message"]
    _not_installed(client, models_dir, "new-text")


def test_replacing_a_text_bundle_with_a_broken_one_keeps_the_old_serving(text_dir, client,
                                                                        tmp_path):
    response = _put(client, "tiny-text", _archive(tmp_path, "tiny-text", _changed_rec))
    assert response.status_code == 422
    picture, _ = tiny.ocr_picture(["YMCK"])
    assert _read(client, _encoded(picture)).get_json()["text"] == "YMCK"


# -- on a live server ------------------------------------------------------------------------

@pytest.mark.slow
def test_a_live_server_reads_an_uploaded_jpeg(text_dir, tmp_path):
    from tools.live_server import LiveServer, post_image

    picture, bands = tiny.ocr_picture(["KYMC", "MM"], size=(640, 480))
    with LiveServer(text_dir, tmp_path / "state") as live:
        live.wait_ready()
        status, body, _ = post_image(f"{live.url}/v1/models/tiny-text/infer",
                                     _encoded(picture, "JPEG", quality=92))
        refused, error, _ = post_image(
            f"{live.url}/v1/models/tiny-text/infer?min_confidence=2", _encoded(picture))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["text"] == "KYMC\nMM"
    for line, band in zip(answer["lines"], bands, strict=True):
        _encloses(line["box"], band, margin=24)
    assert refused == 400 and b"option min_confidence must be between 0 and 1" in error


# -- the task's parts ----------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "distance"), [
    ("kitten", "sitting", 3), ("", "", 0), ("", "abc", 3), ("abc", "", 3),
    ("Gallery Box", "Gallery Box", 0), ("YMCK", "KCMY", 4), ("flaw", "lawn", 2),
    ("张伟", "张", 1),
])
def test_edit_distance_counts_insertions_deletions_and_substitutions(a, b, distance):
    assert ocr.edit_distance(a, b) == distance
    assert ocr.edit_distance(b, a) == distance


def test_encode_then_decode_gives_the_text_back():
    for text in ("", "Gallery Box 2026", "Licence: CC-BY 4.0\n", "张伟 \u3000 𝔸", "a\x00b"):
        codes = ocr.encode(text)
        assert codes.dtype == np.int32 and len(codes) == len(text)
        assert ocr.decode(codes) == text
    assert ocr.decode(ocr.encode("ab")[None, :]) == "ab"  # as an output, with a batch axis


def _readings(*texts: str) -> list[list[np.ndarray]]:
    return [[ocr.encode(text)] for text in texts]


def test_measure_is_character_accuracy_over_every_picture():
    same = OCR.measure(_readings("YMCK", "KK"), _readings("YMCK", "KK"), {}, None)
    assert same == {"char_accuracy": 1.0, "same_lines": 1.0, "pictures_equal": 1.0,
                    "characters": 6.0}
    one_off = OCR.measure(_readings("YMCK", "KK"), _readings("YMCC", "KK"), {}, None)
    assert one_off["char_accuracy"] == pytest.approx(5 / 6)
    assert one_off["pictures_equal"] == 0.5
    split = OCR.measure(_readings("YMCK KK", "Y"), _readings("YMCK\nKK", "Y"), {}, None)
    assert split["char_accuracy"] == pytest.approx(1 - 1 / 8)
    assert split["same_lines"] == 0.5, "a line read as two must count against the candidate"
    assert not gate.judge("ocr", _readings("YMCK KK", "Y"), _readings("YMCK\nKK", "Y"), {},
                          gate.thresholds("ocr")).passed
    worse = OCR.measure(_readings("YM"), _readings("CKCKCKCK"), {}, None)
    assert worse["char_accuracy"] == 0.0  # never below 0, however much more is read


def test_measure_of_pictures_without_text():
    assert OCR.measure(_readings("", ""), _readings("", ""), {}, None)["char_accuracy"] == 1.0
    assert OCR.measure(_readings(""), _readings("K"), {}, None)["char_accuracy"] == 0.0
    with pytest.raises(ValueError):  # a candidate that skipped a picture is an error
        OCR.measure(_readings("a", "b"), _readings("a"), {}, None)


def _output(**changes) -> dict:
    data = tiny.ocr_manifest("t")
    data["output"] = {**data["output"], **changes}
    return data


@pytest.mark.parametrize("changes", [
    {"det_threshold": 0}, {"box_threshold": 1}, {"cls_threshold": 0.0},
    {"min_confidence": 1.0}, {"unclip_ratio": 1}, {"unclip_ratio": 4.0},
])
def test_output_settings_at_the_ends_of_their_ranges_are_accepted(changes):
    manifest = bundles.parse_manifest(_output(**changes))
    assert {key: manifest.output[key] for key in changes} == changes


@pytest.mark.parametrize(("changes", "message"), [
    ({"det_threshold": 1.5}, "output.det_threshold: must be between 0 and 1"),
    ({"box_threshold": -0.1}, "output.box_threshold: must be between 0 and 1"),
    ({"cls_threshold": 2}, "output.cls_threshold: must be between 0 and 1"),
    ({"min_confidence": -1}, "output.min_confidence: must be between 0 and 1"),
    ({"unclip_ratio": 0.5}, "output.unclip_ratio: must be between 1 and 4"),
    ({"unclip_ratio": 4.5}, "output.unclip_ratio: must be between 1 and 4"),
    ({"det_threshold": "high"}, "output.det_threshold"),
])
def test_output_settings_out_of_range_are_refused_naming_them(changes, message):
    with pytest.raises(BundleError, match=message):
        bundles.parse_manifest(_output(**changes))


# -- one deadline per request ---------------------------------------------------------------

def test_every_graph_run_of_a_request_shares_its_one_deadline(tmp_path, monkeypatch):
    """A page of text makes dozens of cls and rec runs: each must stop at the request's
    deadline, not get models.timeout_s of its own (a dense page once took 112 s of CPU)."""
    from appliance import config, pipeline
    from appliance.engine import Runner

    found = tiny.ocr_bundle(tmp_path)
    picture, _ = tiny.ocr_picture(["YMCK", "KK", "CY", "MM", "YY", "KC", "MC", "YK"],
                                  size=(480, 480))
    seen = []
    with Runner(found, config.load(env={}).models) as runner:
        real = runner.run_graph
        monkeypatch.setattr(runner, "run_graph", lambda name, tensor, deadline: (
            seen.append(deadline), real(name, tensor, deadline))[1])
        pipeline.infer(runner, _encoded(picture), {}, 50_000_000)
    assert len(seen) >= 4 and len(set(seen)) == 1, seen


def test_a_request_past_its_deadline_runs_no_more_graphs_and_answers_504(text_dir, client,
                                                                          monkeypatch):
    from appliance.engine import Runner

    real = Runner.run_graph
    monkeypatch.setattr(Runner, "run_graph", lambda self, name, tensor, deadline:
                        real(self, name, tensor, deadline - 3600))  # an hour ago
    picture, _ = tiny.ocr_picture(["YMCK"])
    response = _read(client, _encoded(picture))
    assert response.status_code == 504, response.get_json()
    assert "did not finish this picture within 10 s (models.timeout_s)" in \
        response.get_json()["error"]["message"]
