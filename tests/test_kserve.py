"""The same bundle on KServe's model server answers the same v2 request as the box. KServe
lives in its own virtualenv (make kserve-venv), never in the project's dependencies; the
test skips with that reason where it is missing."""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from appliance import config
from tools.live_server import free_port

pytestmark = pytest.mark.slow
PYTHON = Path(os.environ.get("APPLIANCE_KSERVE_PYTHON",
                             config.CHECKOUT / ".venv-kserve" / "bin" / "python"))
REQUEST = {"inputs": [{"name": "input", "shape": [1, 3, 8, 8], "datatype": "FP32",
                       "data": [0.0] * 64 + [1.0] * 64 + [0.0] * 64}]}




def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_kserve_answers_like_the_box(models_dir, client):
    if not PYTHON.exists():
        pytest.skip(f"needs a virtualenv with kserve at {PYTHON} (make kserve-venv)")
    port = free_port()  # KServe 0.21 binds every address; a free port keeps tests apart
    server = subprocess.Popen(
        [str(PYTHON), str(config.CHECKOUT / "tools" / "kserve_model.py"),
         str(models_dir / "tiny-classify"), "--http-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ,
                                                             "ORT_DISABLE_TELEMETRY": "1"})
    try:
        url = f"http://127.0.0.1:{port}/v2/models/tiny-classify"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/ready", timeout=2) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "KServe never started"
            time.sleep(0.2)
        theirs = _post(url + "/infer", REQUEST)["outputs"][0]
        ours = client.post("/v2/models/tiny-classify/infer", json=REQUEST).get_json()[
            "outputs"][0]
        assert theirs["name"] == ours["name"] == "logits"
        assert theirs["shape"] == ours["shape"] == [1, 4]
        assert theirs["data"] == pytest.approx(ours["data"])
    finally:
        server.terminate()
        server.wait(30)
        server.stdout.close()
