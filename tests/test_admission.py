"""The one admission path: every route that runs a model or shows what the box sees, with no
token, a wrong one and the right one, over its rate limit, while shedding, and with a flood
of made-up model names that must not grow /metrics."""

import base64
import json
import random
import string

import pytest

from appliance.api import create_app
from appliance.auth import Auth
from appliance.ratelimit import RateLimiter
from tests.conftest import ADMIN, image_bytes

TOKEN = "an-inference-token-for-tests"
STRANGER = {"REMOTE_ADDR": "192.0.2.7"}  # not loopback: the kiosk's exception is off
V2_BODY = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 8, 8],
                                  "data": [0.0] * 192}]})
# (method, path, request keywords, the model it is counted under or None): every admitted
# route, and nothing else.
ROUTES = [
    ("POST", "/v1/models/tiny-classify/infer", {"data": {"image": (image_bytes, "a.jpg")}},
     "tiny-classify"),
    ("POST", "/v1/infer", {"data": {"image": (image_bytes, "a.jpg")}}, "tiny-classify"),
    ("POST", "/v2/models/tiny-classify/infer",
     {"data": V2_BODY, "content_type": "application/json"}, "tiny-classify"),
    ("POST", "/v2/models/tiny-classify/versions/1/infer",
     {"data": V2_BODY, "content_type": "application/json"}, "tiny-classify"),
    ("GET", "/v2/models/tiny-classify", {}, None),
    ("GET", "/v2/models/tiny-classify/versions/1", {}, None),
    ("GET", "/v2/models/tiny-classify/ready", {}, None),
    ("GET", "/v2/models/tiny-classify/versions/1/ready", {}, None),
    ("GET", "/v1/models", {}, None),
    ("GET", "/v1/models/tiny-classify", {}, None),
    ("GET", "/v1/events", {}, None),
    ("GET", "/v1/kiosk/frame.jpg", {}, None),
    ("GET", "/metrics", {}, None),
    ("POST", "/v1/vision/detection", {"data": {"image": (image_bytes, "a.jpg")}}, "tiny-faces"),
    ("POST", "/v1/vision/custom/tiny-classify", {"data": {"image": (image_bytes, "a.jpg")}},
     "tiny-classify"),
    ("POST", "/v1/vision/custom/list", {}, None),
    ("POST", "/v1/vision/face", {"data": {"image": (image_bytes, "a.jpg")}}, "tiny-faces"),
    ("POST", "/v1/vision/face/list", {}, None),
    ("POST", "/v1/vision/face/", {"data": {"image": (image_bytes, "a.jpg")}}, "tiny-faces"),
    ("POST", "/v1/vision/face/recognize", {"data": {"image": (image_bytes, "a.jpg")}}, None),
    ("POST", "/v1/vision/face/register",
     {"data": {"image1": (image_bytes, "a.jpg"), "userid": (lambda: b"ada", "")}}, None),
    ("POST", "/v1/vision/face/delete", {"data": {"userid": (lambda: b"ada", "")}}, None),
    ("POST", "/v1/vision/scene", {"data": {"image": (image_bytes, "a.jpg")}}, "tiny-classify"),
    ("POST", "/v1/vision/alpr", {"data": {"upload": (image_bytes, "a.jpg")}}, None),
    ("GET", "/doods/detectors", {}, None),
    ("POST", "/v1/verify", {"data": {"image": (image_bytes, "a.jpg")}}, None),
    ("POST", "/doods/detect", {"json": {"data": base64.b64encode(image_bytes()).decode(),
                                        "detect": {"*": 50}}}, "tiny-faces"),
]
# What the right token gets where it is not 200: the kiosk is off in these apps; the box has no
# face-recognition model or plate reader.
SERVED = {"/v1/events": 404, "/v1/kiosk/frame.jpg": 404, "/v1/vision/face/recognize": 403,
          "/v1/vision/face/register": 403, "/v1/vision/face/delete": 403,
          "/v1/vision/alpr": 403}
# Routes that are open on purpose, or guarded by the admin token instead.
OPEN = {"health.healthz", "health.readyz", "openapi.openapi_json", "web.index", "web.static",
        "kiosk.kiosk_page", "v2.server_metadata", "v2.live", "v2.ready",
        "deepstack.update_available"}
ADMIN_ROUTES = {"models.install", "models.remove", "models.activate", "teach.add_example",
                "teach.list_examples", "teach.list_class", "teach.delete_class",
                "teach.delete_example", "teach.example_photo", "teach.teach_screen",
                "teach.stop_teach_screen", "usage.usage", "usage.statement"}
IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


@pytest.fixture
def locked(settings, services):
    """A client of a box with the inference token set."""
    settings.auth.infer_token = TOKEN
    services.auth = Auth(ADMIN, TOKEN)
    return create_app(settings, services).test_client()


def _send(client, method, path, kwargs, headers=None, environ=STRANGER):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("data"), dict):  # a fresh upload each time
        kwargs["data"] = {k: (_stream(v[0]()), v[1]) for k, v in kwargs["data"].items()}
    return client.open(path, method=method, headers=headers or {}, environ_base=environ,
                       **kwargs)


def _stream(data: bytes):
    import io

    return io.BytesIO(data)


def test_every_route_is_admitted_or_declared_open(app):
    admitted = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "admission", None) is not None:
            admitted[rule.rule] = rule.endpoint
        else:
            assert rule.endpoint in OPEN | ADMIN_ROUTES, \
                f"{rule.rule} ({rule.endpoint}) is neither admitted nor declared open"
    adapter = app.url_map.bind("localhost")
    tested = {adapter.match(path, method, return_rule=True)[0].rule
              for method, path, _, _ in ROUTES}
    assert set(admitted) == tested


@pytest.mark.parametrize("method, path, kwargs, metered", ROUTES, ids=IDS)
def test_no_token_is_401(locked, method, path, kwargs, metered):
    response = _send(locked, method, path, kwargs)
    assert response.status_code == 401, response.data
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"needs the inference token" in response.data


@pytest.mark.parametrize("method, path, kwargs, metered", ROUTES, ids=IDS)
def test_wrong_token_is_401(locked, method, path, kwargs, metered):
    response = _send(locked, method, path, kwargs, {"Authorization": "Bearer not-the-token"})
    assert response.status_code == 401, response.data


@pytest.mark.parametrize("method, path, kwargs, metered", ROUTES, ids=IDS)
def test_right_token_is_served(locked, method, path, kwargs, metered):
    response = _send(locked, method, path, kwargs, {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == SERVED.get(path, 200), response.data


@pytest.mark.parametrize("method, path", [("GET", "/v1/events"),
                                          ("GET", "/v1/kiosk/frame.jpg")])
def test_the_kiosk_browser_on_this_machine_needs_no_token(locked, method, path):
    response = _send(locked, method, path, {}, environ={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 404  # the kiosk is off in this app; the token passed


def test_other_routes_from_this_machine_still_need_the_token(locked):
    response = _send(locked, "GET", "/v1/models", {}, environ={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 401


@pytest.mark.parametrize("method, path, kwargs, metered", ROUTES, ids=IDS)
def test_over_the_rate_limit_is_429(client, services, method, path, kwargs, metered):
    services.limiter = RateLimiter(per_minute=1, burst=1)
    _send(client, method, path, kwargs)
    response = _send(client, method, path, kwargs)
    assert response.status_code == 429, response.data
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("method, path, kwargs, metered", ROUTES, ids=IDS)
def test_over_capacity_is_shed_with_503(client, services, method, path, kwargs, metered):
    services.backlog = lambda: 10_000
    response = _send(client, method, path, kwargs)
    assert response.status_code == 503, response.data
    assert response.headers["Retry-After"] == "1"
    assert b"over capacity" in response.data


@pytest.mark.parametrize("method, path, kwargs, metered",
                         [r for r in ROUTES if r[3]], ids=[i for i, r in zip(IDS, ROUTES,
                                                                             strict=True)
                                                           if r[3]])
def test_inference_is_counted_under_its_model(client, method, path, kwargs, metered):
    assert _send(client, method, path, kwargs).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert f'appliance_requests_total{{model="{metered}",status="200"}} 1' in text


def test_row41_random_model_names_do_not_grow_metrics(client, services):
    services.limiter = RateLimiter(0, 1)  # 404s only: one series for every stranger's name

    def series() -> int:
        text = client.get("/metrics").get_data(as_text=True)
        return sum(1 for line in text.splitlines() if line and not line.startswith("#"))

    _send(client, "POST", "/v1/models/first-stranger/infer", ROUTES[0][2])
    before = series()
    rng = random.Random(41)
    for i in range(1000):
        name = "".join(rng.choices(string.ascii_lowercase, k=12))
        path = f"/v1/models/{name}/infer" if i % 2 else f"/v2/models/{name}/infer"
        assert client.post(path, data=b"x", content_type="image/jpeg",
                           environ_base=STRANGER).status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    assert series() == before
    assert 'appliance_requests_total{model="_unknown",status="404"} 1001' in text


@pytest.mark.slow
def test_over_a_real_socket_the_token_and_the_origin_are_checked(models_dir, tmp_path):
    from tools.live_server import LiveServer, post_image, request

    env = {"APPLIANCE_AUTH_INFER_TOKEN": TOKEN}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with LiveServer(models_dir, tmp_path / "state", env=env) as live:
        live.wait_ready()
        url = f"{live.url}/v1/models/tiny-classify/infer"
        assert post_image(url, image_bytes())[0] == 401
        assert post_image(url, image_bytes(), headers={"Authorization": "Bearer x"})[0] == 401
        assert post_image(url, image_bytes(), headers=bearer)[0] == 200
        v2 = f"{live.url}/v2/models/tiny-classify/infer"
        json_type = {"Content-Type": "application/json"}
        assert request("POST", v2, V2_BODY.encode(), json_type)[0] == 401
        assert request("POST", v2, V2_BODY.encode(), {**json_type, **bearer})[0] == 200
        assert request("GET", f"{live.url}/metrics")[0] == 401
        assert request("GET", f"{live.url}/metrics", headers=bearer)[0] == 200
        cross = {"Content-Type": "text/plain", "Origin": "http://evil.example", **bearer}
        assert request("POST", url, image_bytes(), cross)[0] == 403
        assert request("GET", f"{live.url}/v1/models",
                       headers={"Host": "evil.example", **bearer})[0] == 403
