"""Services.build: every part the API and the standalone loop share, made before the app."""

from appliance import config
from appliance.hardware.cameras import PushCamera
from appliance.hardware.displays import KioskDisplay
from appliance.services import Services
from tests.conftest import ADMIN


def _build(tmp_path, models_dir, **overrides) -> Services:
    settings = config.load(env={}, overrides={
        "models.dir": str(models_dir), "state.dir": str(tmp_path / "state"),
        "provenance.enabled": False, **overrides})
    return Services.build(settings, admin=ADMIN)


def test_the_kiosk_display_and_push_camera_exist_before_any_loop(tmp_path, models_dir):
    with _build(tmp_path, models_dir, **{"standalone.enabled": True, "display.kind": "kiosk",
                                         "camera.kind": "push", "display.width": 640,
                                         "display.height": 360}) as services:
        assert isinstance(services.screen, KioskDisplay) and services.screen.size == (640, 360)
        assert isinstance(services.push_camera, PushCamera)
        assert services.push_camera.budget is services.decodes  # a stranger's upload
        assert services.loop is None  # the loop itself starts later


def test_without_the_standalone_loop_there_is_neither(tmp_path, models_dir):
    with _build(tmp_path, models_dir, **{"display.kind": "kiosk",
                                         "camera.kind": "push"}) as services:
        assert services.screen is None and services.push_camera is None
    with _build(tmp_path, models_dir, **{"standalone.enabled": True, "display.kind": "file",
                                         "display.path": str(tmp_path / "frames"),
                                         "camera.kind": "folder",
                                         "camera.path": str(tmp_path)}) as services:
        assert services.screen is None and services.push_camera is None
