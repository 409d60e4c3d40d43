"""Row 27: a read-only state directory; inference goes on and what cannot be saved is
reported, not crashed on."""

import pytest

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests.conftest import image_bytes


@pytest.fixture
def read_only_dir(tmpfs):
    return tmpfs("ro,size=1m")


def test_row27_read_only_state_directory(read_only_dir, models_dir, caplog):
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(read_only_dir)})
    with Services.build(settings) as services:  # the admin token cannot be saved
        services.start(background=False)
        client = create_app(settings, services).test_client()
        assert client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code \
            == 200
        token = services.auth._admin  # in memory only: the digest of a fresh token
        assert token
    assert "cannot save the admin token" in caplog.text
    assert list(read_only_dir.iterdir()) == []


def test_row27_activate_says_it_was_not_saved(read_only_dir, models_dir):
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(read_only_dir)})
    with Services.build(settings, admin="a") as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        body = client.post("/v1/models/tiny-embed/activate",
                           headers={"Authorization": "Bearer a"}).get_json()
        assert body["active"] == "tiny-embed"
        assert body["warning"].startswith("active model set, but not saved")
