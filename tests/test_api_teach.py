"""Teaching over HTTP with the tiny embedder (the mean colour): examples in, a taught
classify bundle out, served like any other; every guard and bad input of issue 15."""

import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN, image_bytes

AUTH = {"Authorization": f"Bearer {ADMIN}"}
COLOURS = {"red": (200, 30, 30), "green": (30, 190, 40), "blue": (30, 40, 200)}


@pytest.fixture
def teach(settings, client):
    """The client of a box that learns with the tiny embedder."""
    settings.teach.embedder = "tiny-embed"
    return client


def _shade(colour, seed):
    rng = np.random.default_rng(seed)
    return tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)


def _add(client, name, cls, data=None, headers=AUTH, **kwargs):
    data = image_bytes(COLOURS.get(cls, (128, 128, 128))) if data is None else data
    return client.post(f"/v1/models/{name}/examples/{cls}", data={"image": (io.BytesIO(data),
                       "a.jpg")}, headers=headers, **kwargs)


def _teach(client, name="colours", per_class=3, classes=COLOURS):
    for seed in range(per_class):
        for cls, colour in classes.items():
            response = _add(client, name, cls, image_bytes(_shade(colour, seed)))
            assert response.status_code == 201, response.json
    return response.json


def _label(client, name, data):
    response = client.post(f"/v1/models/{name}/infer", data=data, content_type="image/jpeg")
    assert response.status_code == 200, response.json
    return response.json["predictions"][0]["label"]


def test_taught_classes_are_served_like_any_bundle(teach):
    body = _teach(teach)
    assert body["serving"] and body["report"]["loo_accuracy"] == 1.0
    held_out = [(cls, _shade(colour, 100 + i)) for i in range(5)
                for cls, colour in COLOURS.items()]
    right = sum(_label(teach, "colours", image_bytes(c)) == cls for cls, c in held_out)
    assert right / len(held_out) >= 0.9
    listed = {m["name"]: m for m in teach.get("/v1/models").json["models"]}
    assert listed["colours"]["task"] == "classify" and listed["colours"]["status"] == "ready"
    deepstack = teach.post("/v1/vision/custom/colours",
                           data={"image": (io.BytesIO(image_bytes(COLOURS["blue"])), "a.jpg")})
    assert deepstack.json["predictions"][0]["label"] == "blue"


def test_a_photo_far_from_every_class_is_unknown(teach):
    _teach(teach, classes={"red": COLOURS["red"], "green": COLOURS["green"]})
    assert _label(teach, "colours", image_bytes((30, 40, 220))) == "unknown"


def test_the_owner_is_the_author_with_the_licence_they_pick(teach):
    _add(teach, "mine", "red", query_string={"author": "Ada", "license": "CC-BY-4.0"})
    _add(teach, "mine", "green")
    attribution = teach.get("/v1/models/mine").json["attribution"]
    assert attribution["author"] == "Ada" and attribution["license"] == "CC-BY-4.0"
    assert "tiny-embed by Test Author (CC0-1.0)" in attribution["source"]


def test_author_and_licence_may_come_as_form_fields_beside_the_photo(teach):
    data = {"image": (io.BytesIO(image_bytes(COLOURS["red"])), "a.jpg"), "author": "Grace",
            "license": "CC0-1.0"}
    assert teach.post("/v1/models/mine/examples/red", data=data, headers=AUTH).status_code == 201
    _add(teach, "mine", "green")
    attribution = teach.get("/v1/models/mine").json["attribution"]
    assert attribution["author"] == "Grace" and attribution["license"] == "CC0-1.0"


def test_defaults_credit_the_owner_of_the_box(teach):
    _teach(teach, per_class=1)
    attribution = teach.get("/v1/models/colours").json["attribution"]
    assert attribution["author"] == "the owner of this box"
    assert attribution["license"] == "LicenseRef-All-Rights-Reserved"


def test_one_class_does_not_answer_yet(teach):
    body = _add(teach, "half", "red").json
    assert body["serving"] is False
    assert body["reason"] == "a taught model answers once two classes have an example"
    assert teach.post("/v1/models/half/infer", data=image_bytes()).status_code == 404


def test_one_example_per_class_answers_with_a_warning(teach):
    body = _teach(teach, per_class=1)
    assert body["serving"]
    assert body["report"]["warnings"][0].startswith("one example per class: the model answers")
    assert _label(teach, "colours", image_bytes(COLOURS["green"])) == "green"
    report = teach.get("/v1/models/colours/examples", headers=AUTH).json["report"]
    assert report["warnings"] == body["report"]["warnings"]


def test_listing_and_deleting(teach):
    _teach(teach, per_class=2)
    listed = teach.get("/v1/models/colours/examples", headers=AUTH).json
    assert listed["classes"] == [{"name": c, "examples": 2} for c in sorted(COLOURS)]
    ids = [e["id"] for e in teach.get("/v1/models/colours/examples/red",
                                      headers=AUTH).json["examples"]]
    assert len(ids) == 2
    gone = teach.delete(f"/v1/models/colours/examples/red/{ids[0]}", headers=AUTH)
    assert gone.status_code == 200 and gone.json["classes"]["red"] == 1
    assert teach.delete("/v1/models/colours/examples/blue", headers=AUTH).json["classes"] == \
        {"green": 2, "red": 1}
    assert _label(teach, "colours", image_bytes(COLOURS["blue"])) in ("red", "green",
                                                                      "unknown")
    last = teach.delete(f"/v1/models/colours/examples/red/{ids[1]}", headers=AUTH).json
    assert last["serving"] is False  # one class left: it stops answering
    assert teach.get("/v1/models/colours").status_code == 404


def test_an_example_photo_comes_back_as_stored(teach):
    png = image_bytes(COLOURS["red"], fmt="PNG")
    added = _add(teach, "colours", "red", png).json["id"]
    response = teach.get(f"/v1/models/colours/examples/red/{added}", headers=AUTH)
    assert response.status_code == 200 and response.data == png
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, no-store"
    for path in [f"/v1/models/colours/examples/blue/{added}",
                 "/v1/models/colours/examples/red/0123456789abcdef0123",
                 "/v1/models/colours/examples/red/teach.json"]:
        missing = teach.get(path, headers=AUTH)
        assert missing.status_code == 404, path
        assert missing.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/v1/models/colours/examples/nope",
                                  "/v1/models/colours/examples/red/0123456789abcdef0123",
                                  "/v1/models/colours/examples/red/..",
                                  "/v1/models/nobody/examples/red"])
def test_deleting_what_is_not_there_is_404(teach, path):
    _teach(teach, per_class=1)
    response = teach.delete(path, headers=AUTH)
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


ROUTES = [("POST", "/v1/models/colours/examples/red"), ("GET", "/v1/models/colours/examples"),
          ("GET", "/v1/models/colours/examples/red"),
          ("DELETE", "/v1/models/colours/examples/red"),
          ("DELETE", "/v1/models/colours/examples/red/0123456789abcdef0123"),
          ("GET", "/v1/models/colours/examples/red/0123456789abcdef0123")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_needs_the_admin_token(teach, settings, services, method, path):
    _teach(teach, per_class=1)
    data = {"image": (io.BytesIO(image_bytes()), "a.jpg")} if method == "POST" else None
    assert teach.open(path, method=method, data=data).status_code == 401
    from appliance.auth import Auth

    services.auth = Auth(ADMIN, "an-inference-token-for-tests")
    token = {"Authorization": "Bearer an-inference-token-for-tests"}
    data = {"image": (io.BytesIO(image_bytes()), "a.jpg")} if method == "POST" else None
    assert teach.open(path, method=method, data=data, headers=token).status_code == 403
    assert teach.get("/v1/models/colours/examples", headers=AUTH).json["examples"] == 3


@pytest.mark.parametrize("cls, status, message", [
    ("a%2Fb", 400, "class name 'a/b' has a '/'"),
    ("x" * 10_000, 400, "is 10000 characters long, the limit is 64"),
    ("unknown", 400, "is the label the model answers for 'none of these'"),
    ("Red", 409, "class 'Red' is the class 'red' of colours spelt another way"),
    ("%20red", 400, "starts or ends with a space"),
    (".hidden", 400, "starts with a dot"),
    ("tab%09bed", 400, "control character"),
])
def test_bad_class_names(teach, cls, status, message):
    _teach(teach, per_class=1)
    response = teach.post(f"/v1/models/colours/examples/{cls}", data=image_bytes(),
                          content_type="image/jpeg", headers=AUTH)
    assert response.status_code == status, response.json
    assert message in response.json["error"]["message"]
    assert teach.get("/v1/models/colours/examples", headers=AUTH).json["examples"] == 3


@pytest.mark.parametrize("name", ["Bad Name", "a" * 65, ".hidden"])
def test_bad_model_names_are_400(teach, name):
    response = _add(teach, name, "red")
    assert response.status_code == 400 and "is not a model name" in \
        response.json["error"]["message"]


def test_a_model_not_taught_here_is_not_overwritten(teach):
    response = _add(teach, "tiny-classify", "red")
    assert response.status_code == 409
    assert "was not taught on this box" in response.json["error"]["message"]


@pytest.mark.parametrize("data, status", [(b"this is not a picture", 415), (b"", 400)])
def test_an_example_that_is_not_an_image_is_refused_and_not_kept(teach, settings, data,
                                                                 status):
    response = _add(teach, "colours", "red", data)
    assert response.status_code == status, response.json
    assert not (config.Path(settings.state.dir) / "teach" / "colours").exists()


def test_no_image_field_is_400(teach):
    response = teach.post("/v1/models/colours/examples/red",
                          data={"photo": (io.BytesIO(image_bytes()), "a.jpg")}, headers=AUTH)
    assert response.status_code == 400 and "multipart field 'image'" in \
        response.json["error"]["message"]


def test_bad_author_is_400(teach):
    response = _add(teach, "colours", "red", query_string={"author": "x" * 301})
    assert response.status_code == 400 and "field author is 301 characters long" in \
        response.json["error"]["message"]


def test_an_example_over_the_upload_cap_is_413(teach, settings):
    settings.server.max_upload_mb = 0.01
    app = create_app(settings, teach.application.extensions["appliance"])
    big = image_bytes(size=(400, 400), fmt="PNG", compress_level=0)
    response = _add(app.test_client(), "colours", "red", big)
    assert response.status_code == 413


def test_the_number_of_examples_is_bounded(teach, settings):
    settings.teach.max_examples = 4
    _teach(teach, per_class=1)
    assert _add(teach, "colours", "red").status_code == 201
    response = _add(teach, "colours", "red")
    assert response.status_code == 507
    assert "holds 4 examples, the limit (teach.max_examples)" in \
        response.json["error"]["message"]


def test_the_number_of_classes_is_bounded(teach, settings):
    settings.teach.max_classes = 2
    _teach(teach, per_class=1, classes={"red": COLOURS["red"], "green": COLOURS["green"]})
    response = _add(teach, "colours", "blue")
    assert response.status_code == 507 and "(teach.max_classes)" in \
        response.json["error"]["message"]


def test_a_change_while_a_fit_runs_is_409(teach, services, settings):
    settings.teach.wait_s = 0.05
    _teach(teach, per_class=1)
    held, release = threading.Event(), threading.Event()

    def hold():
        with services.teacher.changing("colours"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        response = _add(teach, "colours", "red")
        deleted = teach.delete("/v1/models/colours/examples/red", headers=AUTH)
    finally:
        release.set()
        thread.join()
    assert response.status_code == 409 and deleted.status_code == 409
    assert response.json["error"]["message"] == "a fit of colours is running: retry in a moment"
    assert response.headers["Retry-After"] == "1"
    assert _add(teach, "colours", "red").status_code == 201


def test_the_embedder_removed_new_examples_are_503_the_model_serves(teach):
    _teach(teach, per_class=2)
    assert teach.delete("/v1/models/tiny-embed", headers=AUTH).status_code == 200
    response = _add(teach, "colours", "red")
    assert response.status_code == 503
    assert response.json["error"]["message"].startswith(
        "the embedding model tiny-embed that new examples need is not serving")
    assert _label(teach, "colours", image_bytes(COLOURS["red"])) == "red"
    ids = teach.get("/v1/models/colours/examples/red", headers=AUTH).json["examples"]
    gone = teach.delete(f"/v1/models/colours/examples/red/{ids[0]['id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json["serving"]  # a refit needs no embedder


def test_a_taught_model_exports_and_installs_on_another_box(teach, tmp_path):
    _teach(teach)
    folder = teach.application.extensions["appliance"].registry.models_dir / "colours"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(folder, arcname="colours")
    other = config.load(env={}, overrides={"models.dir": str(tmp_path / "other-models"),
                                           "state.dir": str(tmp_path / "other-state")})
    with Services.build(other, admin=ADMIN) as svc:
        svc.start(background=False)
        client = create_app(other, svc).test_client()
        installed = client.put("/v1/models/colours", data=archive.getvalue(), headers=AUTH)
        assert installed.status_code == 201, installed.json
        for cls, colour in COLOURS.items():
            assert _label(client, "colours", image_bytes(colour)) == cls


def test_row41_a_name_or_month_with_a_trailing_newline_is_400(teach, settings):
    """`^...$` with re.match let 'tm2\\n' through ('$' matches before a last newline): it
    made STATE/teach/tm2\\n/. Names and months are matched whole."""
    response = _add(teach, "tm2%0A", "cat")
    assert response.status_code == 400, response.json
    assert response.json["error"]["message"].startswith("'tm2\\n' is not a model name")
    folder = Path(settings.state.dir) / "teach"
    assert not folder.exists() or list(folder.iterdir()) == []
    installed = teach.put("/v1/models/tm2%0A", data=b"", headers=AUTH)
    assert installed.status_code == 400
    assert installed.json["error"]["message"].startswith("'tm2\\n' is not a bundle name")
    for query, words in [("month=2026-11%0A", "month '2026-11\\n' is not a month"),
                         ("model=tiny-classify%0A", "model 'tiny-classify\\n' is not a model")]:
        response = teach.get(f"/v1/usage?{query}", headers=AUTH)
        assert response.status_code == 400 and words in response.json["error"]["message"]
