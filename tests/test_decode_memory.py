"""HARDENING row 29 over HTTP: small uploads that decode to a lot of memory, six at once,
against a real `appliance serve`; the server's peak memory is read from /proc."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import image_bytes
from tools.live_server import LiveServer, post_image, request

pytestmark = pytest.mark.slow

MB = 1 << 20
# RGBA 7000x7000 needs about 197 MB: over the per-decode budget (413). A 16-bit grey one
# needs about 102 MB: two fit in the total at once, the rest wait their turn (or 503).
DECODE_MB, DECODING_MB = 128, 256
# What the server may add beside the decodes themselves: request threads, six bodies of
# ~150 KB, the tiny models' runs. Four unbounded 16-bit decodes alone would add 400 MB.
SLACK_MB = 48


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """The attack run's inputs: 7000x7000 16-bit grey (~110 KB) and RGBA (~200 KB) PNGs."""
    deep = _png(Image.fromarray(np.full((7000, 7000), 40000, np.uint16)))
    rgba = _png(Image.new("RGBA", (7000, 7000), (200, 30, 30, 128)))
    assert len(deep) < 150_000 and len(rgba) < 250_000
    return {"deep": deep, "rgba": rgba}


def _status_bytes(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


def _send(url: str, data: bytes, as_json: bool) -> tuple[int, dict, dict]:
    if as_json:
        body = json.dumps({"image": base64.b64encode(data).decode("ascii")}).encode()
        status, raw, headers = request("POST", url, body, {"Content-Type": "application/json"})
    else:
        status, raw, headers = post_image(url, data, "bomb.png")
    return status, json.loads(raw), headers


def _at_once(url: str, sends: list[tuple[bytes, bool]]) -> list[tuple[int, dict, dict]]:
    answers: list = [None] * len(sends)

    def one(i: int) -> None:
        answers[i] = _send(url, *sends[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sends))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_row29_six_decode_bombs_at_once_stay_within_the_budget(models_dir, tmp_path, bombs):
    env = {"APPLIANCE_IMAGING_MAX_DECODE_MB": str(DECODE_MB),
           "APPLIANCE_IMAGING_MAX_DECODING_MB": str(DECODING_MB)}
    with LiveServer(models_dir, tmp_path / "state", env=env) as live:
        live.wait_ready()
        pid = live.process.pid
        url = f"{live.url}/v1/models/tiny-faces/infer"
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM back to VmRSS
        before = _status_bytes(pid, "VmRSS")
        sends = [(bombs["deep"], False), (bombs["deep"], True), (bombs["rgba"], False),
                 (bombs["deep"], False), (bombs["deep"], True), (bombs["rgba"], False)]
        answers = _at_once(url, sends)
        grown = _status_bytes(pid, "VmHWM") - before
        print(f"row 29: {[a[0] for a in answers]}, the server grew {grown / MB:.0f} MB "
              f"from {before / MB:.0f} MB")

        deep = [a for a, (data, _) in zip(answers, sends, strict=True) if data is bombs["deep"]]
        rgba = [a for a, (data, _) in zip(answers, sends, strict=True) if data is bombs["rgba"]]
        for status, body, _ in rgba:
            assert status == 413, body
            assert body["error"]["code"] == "payload_too_large"
            assert body["error"]["message"] == (
                "decoding this 7000x7000 RGBA PNG would take 199 MB of memory; this box "
                f"decodes up to {DECODE_MB} MB per image: save it as an 8-bit RGB JPEG or "
                "scale it down")
        assert {status for status, _, _ in deep} <= {200, 503}
        assert any(status == 200 for status, _, _ in deep), deep
        for status, body, headers in deep:
            if status == 503:
                assert body["error"]["code"] == "busy" and headers["Retry-After"] == "1"
            else:
                assert body["model"] == "tiny-faces"
        assert grown <= (DECODING_MB + SLACK_MB) * MB, f"the server grew {grown >> 20} MB"

        # And the box still serves ordinary pictures.
        for data in (image_bytes(size=(4000, 3000)), image_bytes(size=(4000, 3000), fmt="PNG")):
            status, body, _ = _send(url, data, as_json=False)
            assert status == 200, body
    assert os.path.isdir(tmp_path / "state")
