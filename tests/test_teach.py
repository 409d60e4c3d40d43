"""The Teacher: stored embeddings reused, head-only refits without new sessions, a failed
publish leaving the previous fit serving, leftovers of a cut ignored; and the real
lite0-embed on scikit-image's photographs against an accuracy bar."""

import io

import numpy as np
import pytest
from PIL import Image

from appliance import config, pipeline
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN, image_bytes
from tests.test_api_teach import AUTH, COLOURS, _label, _shade, _teach


@pytest.fixture
def teach(settings, client):
    settings.teach.embedder = "tiny-embed"
    return client


def test_a_refit_reads_stored_embeddings_and_never_reruns_the_model(teach, monkeypatch):
    _teach(teach, per_class=2)
    calls = []
    real = pipeline.infer
    monkeypatch.setattr(pipeline, "infer", lambda *a, **k: calls.append(1) or real(*a, **k))
    ids = teach.get("/v1/models/colours/examples/red", headers=AUTH).json["examples"]
    assert teach.delete(f"/v1/models/colours/examples/red/{ids[0]['id']}",
                        headers=AUTH).status_code == 200
    assert calls == []


def test_a_head_only_change_keeps_the_sessions(teach, services):
    _teach(teach, per_class=1)
    runner = services.registry.get("colours")
    version = runner.bundle.manifest.version
    teach.post("/v1/models/colours/examples/red", data=image_bytes(_shade(COLOURS["red"], 7)),
               content_type="image/jpeg", headers=AUTH)
    assert services.registry.get("colours") is runner
    assert runner.bundle.manifest.version != version
    assert runner.bundle.head.classes == 3


def test_a_failed_publish_leaves_the_previous_fit_serving(teach, services, monkeypatch):
    _teach(teach, per_class=1)
    before = services.registry.get("colours").bundle.manifest.version

    def cut(*args):
        raise OSError("power cut")

    monkeypatch.setattr(services.registry, "refresh", cut)
    response = teach.post("/v1/models/colours/examples/red", data=image_bytes(COLOURS["red"]),
                          content_type="image/jpeg", headers=AUTH)
    assert response.status_code == 500
    assert services.registry.get("colours").bundle.manifest.version == before
    assert _label(teach, "colours", image_bytes(COLOURS["green"])) == "green"
    assert not list((services.registry.models_dir / ".staging").glob("*"))
    monkeypatch.undo()
    body = teach.post("/v1/models/colours/examples/blue", data=image_bytes(COLOURS["blue"]),
                      content_type="image/jpeg", headers=AUTH).json
    assert body["classes"] == {"blue": 2, "green": 1, "red": 2}  # the kept example counts


def test_leftovers_of_a_cut_are_ignored(teach, settings):
    _teach(teach, per_class=1)
    root = config.Path(settings.state.dir) / "teach" / "colours"
    (root / "empty").mkdir()
    np.save(root / "red" / "0000000000000000abcd.npy", np.ones(3, np.float32))  # no photo
    (root / "red" / ".0000000000000001abcd.jpg.tmp").write_bytes(b"half")
    listed = teach.get("/v1/models/colours/examples", headers=AUTH).json
    assert listed["classes"] == [{"name": c, "examples": 1} for c in sorted(COLOURS)]


def _crops(name: str, count: int, seed: int) -> list[bytes]:
    from tools.bench.teach import crops

    return crops(name, count, seed)


@pytest.mark.default_models
@pytest.mark.slow
def test_lite0_embed_tells_photographs_apart(tmp_path):
    models = config.CHECKOUT / "models"
    if not (models / "lite0-embed" / "manifest.json").is_file():
        pytest.skip("lite0-embed is not built: run `make models`")
    settings = config.load(env={}, overrides={"models.dir": str(models),
                                              "state.dir": str(tmp_path / "state")})
    settings.models.dir = str(tmp_path / "models")
    import shutil

    shutil.copytree(models / "lite0-embed", tmp_path / "models" / "lite0-embed")
    classes = ("chelsea", "coffee", "astronaut", "rocket")
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        for k, cls in enumerate(classes):
            for data in _crops(cls, 4, seed=k):
                body = client.post(f"/v1/models/photos/examples/{cls}", data=data,
                                   content_type="image/jpeg", headers=AUTH).json
        assert body["report"]["loo_accuracy"] >= 0.9
        right = sum(_label(client, "photos", data) == cls for k, cls in enumerate(classes)
                    for data in _crops(cls, 8, seed=100 + k))
        assert right / (8 * len(classes)) >= 0.9
        noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3),
                                                                  dtype=np.uint8))
        buffer = io.BytesIO()
        noise.save(buffer, "PNG")
        assert _label(client, "photos", buffer.getvalue()) == "unknown"
