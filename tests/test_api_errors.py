"""Every error is JSON with a code and a message that says what to do."""

import io

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN, image_bytes


def test_unknown_route_is_json_404(client):
    response = client.get("/v9/nothing")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"].endswith("see GET /openapi.json for the API")


def test_wrong_method_is_json_405(client):
    response = client.get("/v1/models/tiny-classify/infer")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_row3_body_over_the_limit_is_413(models_dir, tmp_path):
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(tmp_path / "s"),
                                              "server.max_upload_mb": 0.01})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        response = client.post("/v1/models/tiny-classify/infer", data=b"\xff" * 20_000,
                               content_type="image/jpeg")
        assert response.status_code == 413
        assert "larger than this box accepts (0.01 MB)" in response.get_json()["error"]["message"]


def test_row5_thousands_of_multipart_parts_is_413(client):
    fields = {f"f{i}": "x" for i in range(2000)}
    fields["image"] = (io.BytesIO(image_bytes()), "x.jpg")
    response = client.post("/v1/models/tiny-classify/infer", data=fields)
    assert response.status_code == 413


def test_row5_huge_form_field_is_413(client):
    # Encoded by hand: the test client's own encoder spools big forms to an unclosed file.
    body = (b"--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n" + b"x" * 600_000
            + b"\r\n--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.jpg\""
            b"\r\nContent-Type: image/jpeg\r\n\r\n" + image_bytes() + b"\r\n--B--\r\n")
    response = client.post("/v1/models/tiny-classify/infer", data=body,
                           content_type="multipart/form-data; boundary=B")
    assert response.status_code == 413


def test_row5_huge_part_header_is_413_even_in_a_one_file_form(client):
    # The one-file form is read without werkzeug, but not past its limit on what a form
    # holds: a 600 KB file name took werkzeug to 413, and seconds of CPU to parse.
    body = (b"--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\""
            + b"a" * 600_000 + b"\"\r\nContent-Type: image/jpeg\r\n\r\n" + image_bytes()
            + b"\r\n--B--\r\n")
    response = client.post("/v1/models/tiny-classify/infer", data=body,
                           content_type="multipart/form-data; boundary=B")
    assert response.status_code == 413


def test_unexpected_errors_are_json_500_without_details(app, monkeypatch):
    from appliance import pipeline

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(pipeline, "infer", explode)
    app.testing = False
    response = app.test_client().post("/v1/models/tiny-classify/infer", data=image_bytes())
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "internal"


def test_row14_over_capacity_sheds_at_once_with_retry_after(client, services):
    services.backlog = lambda: services.settings.server.max_waiting + 1
    response = client.post("/v1/models/tiny-classify/infer", data=image_bytes())
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "over capacity" in response.get_json()["error"]["message"]
    services.backlog = lambda: services.settings.server.max_waiting  # at the limit: queued
    assert client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code == 200


def test_row14_the_shedding_limit_is_its_own_setting_not_the_threads(client, services):
    import dataclasses

    server = services.settings.server
    services.settings.server = dataclasses.replace(server, threads=2, max_waiting=10)
    try:
        services.backlog = lambda: 10  # five rounds of two threads: still within the limit
        assert client.post("/v1/models/tiny-classify/infer",
                           data=image_bytes()).status_code == 200
        services.backlog = lambda: 11
        assert client.post("/v1/models/tiny-classify/infer",
                           data=image_bytes()).status_code == 503
    finally:
        services.settings.server = server
        services.backlog = lambda: 0
