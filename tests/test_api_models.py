"""/v1/models, infer and activate through the Flask test client."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN, image_bytes, photo_bytes


def test_list_models(client):
    body = client.get("/v1/models").get_json()
    assert body["active"] == "tiny-classify"
    names = [m["name"] for m in body["models"]]
    assert names == ["tiny-classify", "tiny-embed", "tiny-faces", "tiny-negative"]
    first = body["models"][0]
    assert first["task"] == "classify" and first["precision"] == "fp32"
    assert first["input_size"] == [8, 8] and first["license"] == "CC0-1.0"
    assert first["attribution"]["author"] == "Test Author" and first["active"] is True


def test_get_one_model_with_stats(client):
    client.post("/v1/models/tiny-classify/infer", data={"image": (io.BytesIO(image_bytes()),
                                                                  "a.jpg")})
    body = client.get("/v1/models/tiny-classify").get_json()
    assert body["input"]["layout"] == "NCHW"
    assert body["stats"]["requests"] == 1
    assert body["stats"]["overruns"] == 0


def test_unknown_model_404_lists_names(client):
    for response in (client.get("/v1/models/nope"),
                     client.post("/v1/models/nope/infer", data=image_bytes())):
        assert response.status_code == 404
        assert response.get_json()["error"] == {
            "code": "not_found",
            "message": "no model named 'nope': installed models are tiny-classify, "
                       "tiny-embed, tiny-faces, tiny-negative (GET /v1/models)"}


@pytest.mark.parametrize(("colour", "label"), [((255, 0, 0), "red"), ((0, 200, 0), "green"),
                                               ((0, 0, 255), "blue"), ((5, 5, 5), "dark")])
def test_classify_multipart(client, colour, label):
    response = client.post("/v1/models/tiny-classify/infer?top_k=2",
                           data={"image": (io.BytesIO(image_bytes(colour)), "x.jpg")})
    assert response.status_code == 200
    body = response.get_json()
    assert body["predictions"][0]["label"] == label
    assert len(body["predictions"]) == 2
    assert body["attribution"]["license"] == "CC0-1.0"


def test_raw_body_upload(client):
    response = client.post("/v1/models/tiny-classify/infer", data=image_bytes((0, 0, 255),
                                                                              fmt="PNG"),
                           content_type="image/png")
    assert response.get_json()["predictions"][0]["label"] == "blue"


def test_active_model_route_and_activate(client):
    data = image_bytes((255, 0, 0))
    assert "predictions" in client.post("/v1/infer", data=data).get_json()
    denied = client.post("/v1/models/tiny-embed/activate")
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.post("/v1/models/tiny-embed/activate",
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.post("/v1/models/tiny-embed/activate",
                     headers={"Authorization": f"Bearer {ADMIN}"})
    assert ok.get_json() == {"active": "tiny-embed"}
    assert client.post("/v1/infer", data=data).get_json()["dim"] == 3


def test_embed(client):
    body = client.post("/v1/models/tiny-embed/infer", data=image_bytes((255, 0, 0))).get_json()
    assert body["dim"] == 3
    assert np.linalg.norm(body["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert body["embedding"][0] > 0.99


def test_image_to_image_png_with_attribution(client):
    response = client.post("/v1/models/tiny-negative/infer",
                           data=image_bytes((255, 0, 0), size=(60, 30), fmt="PNG"))
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Model-License"] == "CC0-1.0"
    assert "inference;dur=" in response.headers["Server-Timing"]
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (60, 30)
    assert image.getpixel((5, 5)) == (0, 255, 255)
    assert image.text["Author"] == "Test Author"


def test_image_to_image_jpeg_and_json(client):
    data = image_bytes((255, 0, 0), size=(60, 30), fmt="PNG")
    jpeg = client.post("/v1/models/tiny-negative/infer?format=jpeg", data=data)
    assert jpeg.mimetype == "image/jpeg"
    body = client.post("/v1/models/tiny-negative/infer?format=json", data=data).get_json()
    assert body["mime"] == "image/png" and body["width"] == 60
    image = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert image.size == (60, 30)
    bad = client.post("/v1/models/tiny-negative/infer?format=gif", data=data)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["message"] == ("option format must be one of png, jpeg, "
                                                  "json, got 'gif'")


def test_real_photo_through_the_tiny_model(client):
    response = client.post("/v1/models/tiny-classify/infer",
                           data={"image": (io.BytesIO(photo_bytes()), "chelsea.jpg")})
    assert response.status_code == 200


@pytest.mark.parametrize(("data", "status", "code", "fragment"), [
    (b"\x00\x01garbage" * 50, 415, "unsupported_media_type", "send one of JPEG, PNG, WebP"),
    (image_bytes(size=(300, 300))[:300], 400, "bad_request", "truncated or corrupt"),
    (b"", 400, "bad_request", "no image in the request"),
])
def test_bad_images(client, data, status, code, fragment):
    response = client.post("/v1/models/tiny-classify/infer", data=data,
                           content_type="application/octet-stream")
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and fragment in error["message"]


def test_a_one_file_form_is_read_without_werkzeugs_form_parser(client, monkeypatch):
    import flask

    def refuse(self):
        raise AssertionError("werkzeug's form parser ran for curl's one-file form")

    monkeypatch.setattr(flask.Request, "make_form_data_parser", refuse)
    response = client.post("/v1/models/tiny-classify/infer",
                           data={"image": (io.BytesIO(image_bytes()), "x.jpg")})
    assert response.status_code == 200, response.get_json()


def test_an_image_field_without_a_file_name_is_not_a_file(client):
    # `curl -F image=<photo.jpg` sends the photo as a text field: werkzeug's rule, kept by
    # the one-file reader too.
    body = (b'--B\r\nContent-Disposition: form-data; name="image"\r\n\r\n' + image_bytes()
            + b"\r\n--B--\r\n")
    response = client.post("/v1/models/tiny-classify/infer", data=body,
                           content_type="multipart/form-data; boundary=B")
    assert response.status_code == 400
    assert "no multipart field 'image'" in response.get_json()["error"]["message"]


def test_multipart_without_image_field(client):
    response = client.post("/v1/models/tiny-classify/infer",
                           data={"photo": (io.BytesIO(image_bytes()), "x.jpg")})
    assert response.status_code == 400
    assert "no multipart field 'image'" in response.get_json()["error"]["message"]


def test_metrics_count_by_status(client):
    client.post("/v1/models/tiny-classify/infer", data=image_bytes())
    client.post("/v1/models/tiny-classify/infer", data=b"junkjunkjunk")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'appliance_requests_total{model="tiny-classify",status="200"} 1' in text
    assert 'appliance_requests_total{model="tiny-classify",status="415"} 1' in text
    assert 'appliance_request_duration_seconds_count{model="tiny-classify"} 1' in text
    assert 'appliance_model_up{model="tiny-embed"} 1' in text


def test_detect_boxes_in_the_uploaded_images_pixels(client):
    response = client.post("/v1/models/tiny-faces/infer",
                           data=image_bytes((255, 255, 255), size=(64, 48), fmt="PNG"))
    (face,) = response.get_json()["detections"]
    assert face["label"] == "face" and face["score"] > 0.99
    assert face["box"] == [16.0, 8.0, 48.0, 40.0]  # letterboxed 64x48 -> 8x6, pad 1
    dark = client.post("/v1/models/tiny-faces/infer", data=image_bytes((0, 0, 0), fmt="PNG"))
    assert dark.get_json()["detections"] == []
    strict = client.post("/v1/models/tiny-faces/infer?threshold=1",
                         data=image_bytes((255, 255, 255), fmt="PNG"))
    assert strict.get_json()["detections"] == []


@pytest.fixture
def push_services(tmp_path, models_dir):
    """Services whose camera is the push camera (camera.kind push, standalone.enabled), as
    the settings make it, with the tiny models loaded."""
    pushing = config.load(env={}, overrides={
        "models.dir": str(models_dir), "state.dir": str(tmp_path / "state"),
        "standalone.enabled": True, "camera.kind": "push"})
    with Services.build(pushing, admin=ADMIN) as svc:
        svc.start(background=False)
        yield svc


def test_uploads_feed_the_push_camera(push_services):
    client = create_app(push_services.settings, push_services).test_client()
    assert push_services.push_camera.read() is None  # nothing sent yet
    client.post("/v1/models/tiny-classify/infer", data=image_bytes((0, 255, 0), size=(30, 20)))
    number, image = push_services.push_camera.read()
    assert number == 1 and image.size == (30, 20)  # full size, not the model's draft
    assert image.getpixel((15, 10))[1] > 200  # the green picture that was sent
    sent = base64.b64encode(image_bytes((0, 0, 255), size=(12, 10), fmt="PNG")).decode()
    assert client.post("/v1/infer", json={"image": sent}).status_code == 200
    number, image = push_services.push_camera.read()
    assert number == 2 and image.size == (12, 10) and image.getpixel((6, 5)) == (0, 0, 255)


def test_bytes_that_are_not_a_picture_never_reach_the_push_camera(push_services):
    client = create_app(push_services.settings, push_services).test_client()
    picture = image_bytes((0, 255, 0), size=(30, 20))
    for junk in (b"not a picture at all", picture[:40]):  # text; a JPEG cut after its header
        response = client.post("/v1/models/tiny-classify/infer", data=junk)
        assert response.status_code in (400, 415), response.get_json()
        assert push_services.push_camera.read() is None
    assert client.post("/v1/infer", data=picture).status_code == 200
    assert push_services.push_camera.read()[0] == 1  # the camera was there all along


def test_kiosk_routes_are_404_without_the_kiosk_display(client):
    response = client.get("/v1/events")
    assert response.status_code == 404
    assert "set display.kind = \"kiosk\"" in response.get_json()["error"]["message"]
    with client.get("/kiosk") as page:
        assert page.status_code == 200 and b"EventSource" in page.data


def _json_infer(client, query: str = "", **fields):
    body = {"image": base64.b64encode(image_bytes()).decode(), **fields}
    return client.post(f"/v1/models/tiny-classify/infer{query}", json=body)


def test_a_json_bodys_other_fields_are_options(client):
    assert len(_json_infer(client).get_json()["predictions"]) == 3
    assert [p["label"] for p in _json_infer(client, top_k=1).get_json()["predictions"]] == \
        ["red"]
    unknown = _json_infer(client, sharpness=3)
    assert unknown.status_code == 400 and "unknown option 'sharpness'" in \
        unknown.get_json()["error"]["message"]
    nested = _json_infer(client, top_k={"a": 1})
    assert nested.status_code == 400 and "top_k" in nested.get_json()["error"]["message"]


def test_an_option_given_twice_is_400(client):
    twice = client.post("/v1/models/tiny-classify/infer?top_k=1&top_k=3", data=image_bytes(),
                        content_type="image/jpeg")
    assert twice.status_code == 400
    assert "given 2 times" in twice.get_json()["error"]["message"]
    both = _json_infer(client, "?top_k=1", top_k=2)
    assert both.status_code == 400
    assert "in the query and in the JSON body" in both.get_json()["error"]["message"]
