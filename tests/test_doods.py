"""Home Assistant's DOODS API over HTTP on real sessions of tiny bundles: the detectors list,
edges as fractions and confidences in percent, per-label minimums, the doods-auth-key header,
and bad bodies answered `{"error": ...}`."""

import base64

import pytest

from appliance.api import create_app
from appliance.auth import Auth
from tests import models as tiny
from tests.conftest import ADMIN, image_bytes, photo_bytes

TOKEN = "an-inference-token-for-tests"


@pytest.fixture
def models_dir(models_dir):
    tiny.write_crowd(models_dir, "crowd", ["person", "car", "truck"])
    return models_dir


def _detect(client, picture=None, headers=None, **body):
    if picture is not None:
        body["data"] = base64.b64encode(picture).decode()
    return client.post("/doods/detect", json=body, headers=headers or {})


def _error(response, status: int) -> str:
    assert response.status_code == status, response.data
    return response.get_json()["error"]


def test_detectors_lists_default_and_each_detect_bundle(client):
    detectors = client.get("/doods/detectors").get_json()["detectors"]
    assert [d["name"] for d in detectors] == ["default", "crowd", "tiny-faces"]
    default = detectors[0]
    assert default["model"] == "tiny-faces" and default["labels"] == ["face"]
    assert (default["width"], default["height"]) == (tiny.SIZE, tiny.SIZE)
    assert detectors[1]["labels"] == ["person", "car", "truck"]


def test_detect_answers_fractions_and_percent(client):
    photo = photo_bytes()
    body = _detect(client, photo, detector_name="default", detect={"*": 10}, id="cam1")
    assert body.status_code == 200
    body = body.get_json()
    ours = client.post("/v1/models/tiny-faces/infer", data=photo,
                       content_type="image/jpeg").get_json()
    width, height = 451, 300  # the cat photograph
    x0, y0, x1, y1 = ours["detections"][0]["box"]
    found = body["detections"][0]
    assert body["id"] == "cam1" and found["label"] == "face"
    assert found["confidence"] == pytest.approx(ours["detections"][0]["score"] * 100, abs=0.01)
    assert found["left"] == pytest.approx(x0 / width, abs=1e-4)
    assert found["top"] == pytest.approx(y0 / height, abs=1e-4)
    assert found["right"] == pytest.approx(x1 / width, abs=1e-4)
    assert found["bottom"] == pytest.approx(y1 / height, abs=1e-4)
    assert body["attribution"]["author"] == "Test Author"


def test_base64_with_line_breaks_is_read(client):
    wrapped = base64.encodebytes(photo_bytes()).decode()  # a line break every 76 characters
    assert "\n" in wrapped
    response = client.post("/doods/detect", json={"data": wrapped.replace("\n", "\r\n"),
                                                  "detect": {"*": 10}})
    assert response.status_code == 200, response.data
    assert response.get_json()["detections"][0]["label"] == "face"


def test_per_label_minimums_in_percent(client):
    def labels(detect):
        body = _detect(client, image_bytes(), detector_name="crowd", detect=detect)
        return [(d["label"], d["confidence"]) for d in body.get_json()["detections"]]

    found = labels({"car": 90})
    assert found and all(label == "car" and score >= 90 for label, score in found)
    both = labels({"person": 95, "*": 80})
    assert {label for label, _ in both} == {"person", "car", "truck"}
    assert all(score >= 95 for label, score in both if label == "person")
    assert all(score >= 80 for _, score in both)
    assert len(labels({})) == 30  # no minimums: everything over the model's own threshold
    assert labels({"dog": 0}) == []


@pytest.mark.parametrize("body, words", [
    ({"detector_name": "crowd"}, "data must hold the picture"),
    ({"detector_name": "crowd", "data": "***not base64***"}, "not valid base64"),
    ({"detector_name": 7, "data": "AAAA"}, "detector_name must be"),
    ({"detector_name": "", "data": "AAAA"}, "detector_name must be"),
    ({"data": "AAAA", "detect": {"person": -1}}, "0 to 100"),
    ({"data": "AAAA", "detect": {"person": 101}}, "0 to 100"),
    ({"data": "AAAA", "detect": {"person": "abc"}}, "0 to 100"),
    ({"data": "AAAA", "detect": {"person": True}}, "0 to 100"),
    ({"data": "AAAA", "detect": ["person"]}, "detect must be an object"),
])
def test_bad_bodies_are_400(client, body, words):
    assert words in _error(client.post("/doods/detect", json=body), 400)


def test_a_body_that_is_not_a_json_object_is_400(client):
    raw = client.post("/doods/detect", data=b"{not json", content_type="application/json")
    assert "not valid JSON" in _error(raw, 400)
    assert "JSON object" in _error(client.post("/doods/detect", json=[1, 2]), 400)


def test_a_picture_that_is_not_one_is_415(client):
    assert _error(_detect(client, b"just text", detector_name="crowd"), 415)


def test_unknown_and_non_detector_models(client):
    assert "no model named" in _error(_detect(client, image_bytes(), detector_name="nope"),
                                      404)
    message = _error(_detect(client, image_bytes(), detector_name="tiny-classify"), 400)
    assert "classify model" in message


@pytest.fixture
def locked(settings, services):
    settings.auth.infer_token = TOKEN
    services.auth = Auth(ADMIN, TOKEN)
    return create_app(settings, services).test_client()


def test_the_doods_auth_key_header_carries_the_inference_token(locked):
    for send in (lambda h: locked.get("/doods/detectors", headers=h),
                 lambda h: _detect(locked, image_bytes(), headers=h, detect={"*": 50})):
        assert "doods-auth-key" in _error(send({}), 401)
        assert _error(send({"doods-auth-key": "not-the-token"}), 401)
        assert send({"doods-auth-key": TOKEN}).status_code == 200
        assert send({"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_a_huge_detector_name_is_refused_without_echoing_it(client, services):
    response = _detect(client, image_bytes(), detector_name="x" * 1_000_000)
    assert "no detector's name is longer than 64" in _error(response, 400)
    assert len(response.data) < 1000


def test_a_refused_request_counts_under_the_default_detector(client):
    client.post("/doods/detect", data=b"{not json", content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'appliance_requests_total{model="tiny-faces",status="400"} 1' in text
