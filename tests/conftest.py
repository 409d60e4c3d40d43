"""Shared fixtures: settings on temporary folders, tiny real bundles, the app and its client."""

from __future__ import annotations

import io
import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import numpy as np
import pytest
from PIL import Image

from appliance import config
from appliance.api import create_app
from appliance.services import Services
from tests import models as tiny

ADMIN = "test-admin-token"


@pytest.fixture
def models_dir(tmp_path):
    """A models folder with the four tiny bundles: tiny-classify, tiny-embed, tiny-faces,
    tiny-negative."""
    folder = tmp_path / "models"
    tiny.write_bundle(folder, "tiny-classify", "classify")
    tiny.write_bundle(folder, "tiny-embed", "embed")
    spec = tiny.manifest("x", "detect")["input"]
    tiny.write_bundle(folder, "tiny-faces", "detect",
                      input={**spec, "dynamic_batch": False, "resize": "letterbox"})
    tiny.write_bundle(folder, "tiny-negative", "image-to-image")
    return folder


@pytest.fixture
def settings(tmp_path, models_dir):
    """Settings pointing at the tiny models and a temporary state folder."""
    return config.load(env={}, overrides={
        "models.dir": str(models_dir), "state.dir": str(tmp_path / "state"),
        "models.intra_op_threads": 1, "models.timeout_s": 10.0,
        "compat.detection_model": "tiny-faces", "compat.face_model": "tiny-faces",
        "compat.scene_model": "tiny-classify"})


@pytest.fixture
def services(settings):
    """Services with every tiny model loaded and warm."""
    with Services.build(settings, admin=ADMIN) as svc:
        svc.start(background=False)
        yield svc


@pytest.fixture
def app(settings, services):
    return create_app(settings, services)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs with the given options (root only; skips with the reason
    elsewhere) and unmount it afterwards: `tmpfs("size=1m")` returns the folder."""
    import subprocess

    mounted = []

    def mount(options: str):
        folder = tmp_path / f"tmpfs-{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs ({options}) here ({done.stderr.strip()}): "
                        "needs root")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=False)


class CountingReads(io.BytesIO):
    """A body as a web server buffers it (waitress's BytesIO or file), counting the bytes
    each read takes."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.reads: list[int] = []

    def read(self, size=-1):
        data = super().read(size)
        self.reads.append(len(data))
        return data


def image_bytes(color=(255, 0, 0), size=(64, 48), fmt="JPEG", mode="RGB", **save) -> bytes:
    """An image of one colour encoded in `fmt`."""
    image = Image.new("RGB", size, color)
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def photo_bytes(fmt: str = "JPEG") -> bytes:
    """A real photograph (scikit-image's cat, Chelsea) encoded in `fmt`."""
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(data.chelsea())).save(buffer, fmt)
    return buffer.getvalue()


def assert_golden(image, path) -> None:
    """`image` is pixel for pixel the committed golden picture at `path` (written when it is
    missing, or with UPDATE_GOLDENS=1: look at it, then commit it)."""
    import os

    from PIL import Image, ImageChops

    if os.environ.get("UPDATE_GOLDENS") == "1" or not path.exists():
        image.save(path)
    with Image.open(path) as golden:
        assert ImageChops.difference(image, golden.convert("RGB")).getbbox() is None, \
            f"{path.name} changed: look at it, then UPDATE_GOLDENS=1 if it is right"
