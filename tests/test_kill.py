"""Rows 21 and 22 with real processes: `kill -9` while an install is staged or swapping,
then a restart: the staging area is clean and the model served is whole, old or new."""

import io
import signal
import tarfile
import threading
import time

import pytest

from appliance import bundle as bundles
from tests import models as tiny
from tests.conftest import ADMIN, image_bytes
from tools.live_server import LiveServer, post_image, request

pytestmark = pytest.mark.slow


def _archive(tmp_path, name: str) -> bytes:
    found = tiny.write_bundle(tmp_path / "src", name, model=tiny.conv_net(size=8),
                              version="2.0.0")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(found.path, arcname=name)
    return buffer.getvalue()


def _serve(models_dir, state):
    live = LiveServer(models_dir, state)
    live.wait_ready()
    return live


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8], ids=["staged", "probing", "swapping"])
def test_row21_row22_kill_9_during_an_install(models_dir, tmp_path, delay):
    state = tmp_path / "state"
    state.mkdir()
    (state / "admin-token").write_text(ADMIN + "\n")
    body = _archive(tmp_path, "tiny-classify")
    live = _serve(models_dir, state)
    staging = models_dir / ".staging"
    put = threading.Thread(target=request, args=(
        "PUT", f"{live.url}/v1/models/tiny-classify", body,
        {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/gzip"}))
    put.start()
    deadline = time.monotonic() + 10
    while not (staging.exists() and any(staging.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    live.stop(signal.SIGKILL)
    put.join(10)

    again = _serve(models_dir, state)
    try:
        assert not staging.exists() or not any(staging.iterdir())
        found = bundles.read(models_dir / "tiny-classify")  # whole: checksum and manifest
        assert found.manifest.version in ("0.0.1", "2.0.0")  # old or new, never a mix
        assert post_image(f"{again.url}/v1/models/tiny-classify/infer",
                          image_bytes())[0] == 200
    finally:
        again.stop()
