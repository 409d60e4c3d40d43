from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_when_ready(client):
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready"
    assert body["models"] == ["tiny-classify", "tiny-embed", "tiny-faces", "tiny-negative"]


def test_readyz_503_while_loading(settings):
    with Services.build(settings, admin=ADMIN) as services:
        response = create_app(settings, services).test_client().get("/readyz")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.get_json()["reason"] == "models are still loading"


def test_readyz_503_when_every_model_is_broken(tmp_path, models_dir):
    for folder in models_dir.iterdir():
        (folder / "model.onnx").write_bytes(b"broken")
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(tmp_path / "s")})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert set(response.get_json()["failed"]) == {"tiny-classify", "tiny-embed",
                                                      "tiny-faces", "tiny-negative"}
        assert client.get("/healthz").status_code == 200
        models = client.get("/v1/models").get_json()["models"]
        assert all(m["status"] == "failed" and "sha256" in m["error"] for m in models)
        infer = client.post("/v1/infer", data=b"x")
        assert infer.status_code == 503
        assert "no model is serving" in infer.get_json()["error"]["message"]


def test_row35_readyz_names_models_only_to_holders_of_the_inference_token(client, services):
    from appliance.auth import Auth

    services.auth = Auth(ADMIN, "an-inference-token-for-tests")
    stranger = client.get("/readyz")
    assert stranger.status_code == 200
    assert stranger.get_json() == {"status": "ready"}
    holder = client.get("/readyz", headers={"Authorization":
                                            "Bearer an-inference-token-for-tests"})
    assert holder.get_json()["models"] == ["tiny-classify", "tiny-embed", "tiny-faces",
                                           "tiny-negative"]
