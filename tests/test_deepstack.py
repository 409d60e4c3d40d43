"""The DeepStack / CodeProject.AI API over HTTP, on real onnxruntime sessions of tiny bundles:
fields, units, order and cap of predictions, thresholds, the api_key form field, and every
bad input answered in DeepStack's error shape."""

import io

import pytest
from PIL import Image

from appliance.api import create_app
from appliance.auth import Auth
from appliance.ratelimit import RateLimiter
from tests import models as tiny
from tests.conftest import ADMIN, image_bytes, photo_bytes

TOKEN = "an-inference-token-for-tests"
CROWD_LABELS = ["person", "car", "truck"]


@pytest.fixture
def models_dir(models_dir):
    tiny.write_crowd(models_dir, "crowd", CROWD_LABELS)
    return models_dir


def _post(client, path, image=None, field="image", **form):
    data = {k: str(v) for k, v in form.items()}
    if image is not None:
        data[field] = (io.BytesIO(image), "photo.jpg")
    return client.post(path, data=data, content_type="multipart/form-data")


def _error(response, status):
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["success"] is False and body["duration"] == 0
    return body["error"]


def test_detection_answers_deepstack_fields_in_the_uploads_pixels(client):
    photo = photo_bytes()
    body = _post(client, "/v1/vision/detection", photo).get_json()
    ours = client.post("/v1/models/tiny-faces/infer", data=photo,
                       content_type="image/jpeg").get_json()["detections"]
    assert body["success"] is True and body["count"] == len(body["predictions"]) == 1
    found = body["predictions"][0]
    assert set(found) == {"label", "confidence", "x_min", "y_min", "x_max", "y_max"}
    assert all(isinstance(found[k], int) for k in ("x_min", "y_min", "x_max", "y_max"))
    x0, y0, x1, y1 = ours[0]["box"]
    assert (found["x_min"], found["y_min"]) == (int(x0), int(y0))
    assert found["x_max"] >= x1 > found["x_max"] - 1 and found["y_max"] >= y1
    assert found["label"] == "face" and found["confidence"] == pytest.approx(ours[0]["score"])
    assert body["model"] == "tiny-faces" and body["attribution"]["author"] == "Test Author"


def test_predictions_come_best_first_and_at_most_20(client):
    body = _post(client, "/v1/vision/custom/crowd", image_bytes((200, 200, 200))).get_json()
    scores = [p["confidence"] for p in body["predictions"]]
    assert len(scores) == 20  # the model finds 30: Frigate fails on a 21st
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.99


def test_the_cap_is_a_setting(client, settings):
    settings.compat.max_predictions = 3
    body = _post(client, "/v1/vision/custom/crowd", image_bytes()).get_json()
    assert [p["label"] for p in body["predictions"]] == CROWD_LABELS


def test_min_confidence_filters_and_defaults_to_deepstacks(client):
    def count(**form):
        return len(_post(client, "/v1/vision/custom/crowd", image_bytes(), **form)
                   .get_json()["predictions"])

    assert count(min_confidence=0.9) == 6  # 0.99 down to 0.5 over 30 boxes
    assert count(min_confidence=0.8, **{}) == 12
    # Default 0.45 lets every box of this model through (the lowest is 0.5), up to the cap.
    assert count() == 20


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "nan", "inf"])
def test_a_bad_min_confidence_is_400(client, value):
    message = _error(_post(client, "/v1/vision/detection", image_bytes(),
                           min_confidence=value), 400)
    assert "min_confidence must be a number from 0 to 1" in message


def test_no_image_is_400_naming_the_field(client):
    assert "form field 'image'" in _error(_post(client, "/v1/vision/detection"), 400)
    wrong = _error(_post(client, "/v1/vision/detection", image_bytes(), field="file"), 400)
    assert "'file'" in wrong
    assert "empty" in _error(_post(client, "/v1/vision/detection", b""), 400)
    raw = client.post("/v1/vision/detection", data=image_bytes(), content_type="image/jpeg")
    assert "form field 'image'" in _error(raw, 400)


def test_not_an_image_is_deepstacks_400(client):
    assert "image" in _error(_post(client, "/v1/vision/detection", b"not a picture"), 400)


def test_a_one_pixel_image_is_answered(client):
    body = _post(client, "/v1/vision/detection", image_bytes(size=(1, 1))).get_json()
    assert body["success"] is True
    for found in body["predictions"]:
        assert 0 <= found["x_min"] <= found["x_max"] <= 1


def test_an_unknown_model_is_404_and_a_wrong_task_400(client):
    assert "no model named 'nope'" in _error(_post(client, "/v1/vision/custom/nope",
                                                   image_bytes()), 404)
    message = _error(_post(client, "/v1/vision/custom/tiny-negative", image_bytes()), 400)
    assert "image-to-image model" in message and "detect or classify" in message


def test_custom_list_names_the_detect_and_classify_bundles(client):
    for method in (client.get, client.post):
        body = method("/v1/vision/custom/list").get_json()
        assert body == {"success": True, "models": ["crowd", "tiny-classify", "tiny-faces"],
                        "duration": 0}


def test_a_classifier_answers_custom_with_whole_image_boxes(client):
    body = _post(client, "/v1/vision/custom/tiny-classify", image_bytes(size=(40, 30)),
                 min_confidence=0.2).get_json()
    assert body["predictions"][0] == {**body["predictions"][0], "label": "red", "x_min": 0,
                                      "y_min": 0, "x_max": 40, "y_max": 30}


def test_min_confidence_cuts_a_classifiers_labels(client):
    body = _post(client, "/v1/vision/custom/tiny-classify", image_bytes(),
                 min_confidence=0.5).get_json()
    assert [p["label"] for p in body["predictions"]] == ["red"]


def test_scene_answers_the_classifiers_best_label(client):
    body = _post(client, "/v1/vision/scene", image_bytes((0, 0, 255))).get_json()
    assert body["success"] is True and body["label"] == "blue" and 0 < body["confidence"] <= 1


def test_face_finds_faces_on_both_paths(client):
    for path in ("/v1/vision/face", "/v1/vision/face/"):
        body = _post(client, path, photo_bytes()).get_json()
        assert [p["label"] for p in body["predictions"]] == ["face"]


def test_face_recognition_and_plates_say_what_is_missing(client):
    listed = client.post("/v1/vision/face/list").get_json()
    assert listed["success"] is True and listed["faces"] == []
    for path in ("register", "recognize", "delete"):
        message = _error(_post(client, f"/v1/vision/face/{path}", image_bytes(),
                               userid="ada"), 403)
        assert "face-embedding model" in message
    assert "licence-plate reader" in _error(_post(client, "/v1/vision/alpr", image_bytes(),
                                                  field="upload"), 403)


def test_blue_iris_update_check_is_answered_without_a_token(locked):
    body = locked.get("/v1/status/updateavailable").get_json()
    assert body["success"] is True and body["updateAvailable"] is False


@pytest.fixture
def locked(settings, services):
    settings.auth.infer_token = TOKEN
    services.auth = Auth(ADMIN, TOKEN)
    return create_app(settings, services).test_client()


@pytest.mark.parametrize("path", ["/v1/vision/detection", "/v1/vision/custom/crowd",
                                  "/v1/vision/scene", "/v1/vision/face"])
def test_the_api_key_field_carries_the_inference_token(locked, path):
    assert "api_key" in _error(_post(locked, path, image_bytes()), 401)
    assert _error(_post(locked, path, image_bytes(), api_key=""), 401)
    assert _error(_post(locked, path, image_bytes(), api_key="not-the-token"), 401)
    assert _post(locked, path, image_bytes(), api_key=TOKEN).status_code == 200
    bearer = locked.post(path, data={"image": (io.BytesIO(image_bytes()), "a.jpg")},
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_a_wrong_header_is_not_rescued_by_the_form(locked):
    response = locked.post("/v1/vision/detection", headers={"Authorization": "Bearer nope"},
                           data={"image": (io.BytesIO(image_bytes()), "a.jpg"),
                                 "api_key": TOKEN})
    assert response.status_code == 401


def test_strangers_uploads_meet_the_rate_limit_before_their_key_is_read(locked, services):
    services.limiter = RateLimiter(per_minute=1, burst=1)
    assert _post(locked, "/v1/vision/detection", image_bytes(), api_key="x").status_code == 401
    response = _post(locked, "/v1/vision/detection", image_bytes(), api_key="x")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


def test_other_sites_pages_are_refused_in_deepstacks_shape(client):
    response = client.post("/v1/vision/detection", headers={"Origin": "http://evil.example"},
                           data={"image": (io.BytesIO(image_bytes()), "a.jpg")})
    assert "another site" in _error(response, 403)


def test_boxes_are_clipped_to_the_picture(client):
    picture = Image.new("RGB", (33, 17), (250, 250, 250))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    for found in _post(client, "/v1/vision/custom/crowd", buffer.getvalue()) \
            .get_json()["predictions"]:
        assert 0 <= found["x_min"] < found["x_max"] <= 33
        assert 0 <= found["y_min"] < found["y_max"] <= 17


def test_a_form_over_werkzeugs_limits_is_counted_as_what_it_answers(client):
    fields = {f"f{i}": "x" for i in range(40)}  # MAX_FORM_PARTS is 16
    response = client.post("/v1/vision/detection", data=fields,
                           content_type="multipart/form-data")
    assert response.status_code == 413
    text = client.get("/metrics").get_data(as_text=True)
    assert 'status="413"} 1' in text and 'status="500"' not in text


def test_a_megabyte_model_name_is_not_echoed_back(client):
    response = _post(client, "/v1/vision/custom/" + "n" * 100_000, image_bytes())
    assert response.status_code == 404 and len(response.data) < 2000
