"""The real client libraries from PyPI, and test clients that behave as Frigate's detectors, against
a live `appliance serve` process on loopback: deepstack-python (Home Assistant's DeepStack
integrations), deepstack-sdk, pydoods (Home Assistant's core DOODS integration), Frigate's
`deepstack` and `zmq` detectors (tools/frigate_clients.py), and bad input over the real sockets.

The client libraries live in .venv-clients (make clients-venv): each runs there as a small script
(tests/clients/) that prints what every call returned or raised; these tests assert on that.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance import config
from tests import models as tiny
from tests.conftest import image_bytes, photo_bytes

requests = pytest.importorskip("requests")
zmq = pytest.importorskip("zmq", reason="pyzmq is not installed (pip install pyzmq)")

from tools import frigate_clients  # noqa: E402  (needs pyzmq, checked above)
from tools.live_server import LiveServer, free_port  # noqa: E402

pytestmark = pytest.mark.slow
CLIENTS = Path(os.environ.get("APPLIANCE_CLIENTS_PYTHON",
                              config.CHECKOUT / ".venv-clients" / "bin" / "python"))
SCRIPTS = Path(__file__).parent / "clients"
TOKEN = "a-token-for-the-compat-clients"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CROWD = ["person", "car", "truck"]  # 30 boxes, all in Frigate's label map (truck as car)


class Box:
    """The live server, its zmq endpoint, and a real photo on disk for the client scripts."""

    def __init__(self, live: LiveServer, zmq_endpoint: str, photo: Path) -> None:
        self.live, self.url, self.zmq, self.photo = live, live.url, zmq_endpoint, photo

    def post(self, path: str, image: bytes | None = None, field: str = "image",
             **form) -> requests.Response:
        """A multipart POST as DeepStack's clients send it; api_key is the token unless given
        (None: left out)."""
        form = {"api_key": TOKEN, **form}
        parts = {k: (None, str(v)) for k, v in form.items() if v is not None}
        if image is not None:
            parts[field] = ("photo.jpg", image, "image/jpeg")
        return requests.post(self.url + path, files=parts, timeout=10)

    def metrics(self) -> Counter:
        """appliance_requests_total summed by status."""
        text = requests.get(self.url + "/metrics", headers=BEARER, timeout=10).text
        counts: Counter = Counter()
        for status, count in re.findall(r'appliance_requests_total\{model="[^"]*",'
                                        r'status="(\d+)"\} (\d+)', text):
            counts[int(status)] += int(count)
        return counts


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compat")
    models = folder / "models"
    spec = {**tiny.manifest("x", "detect")["input"], "dynamic_batch": False,
            "resize": "letterbox"}
    tiny.write_bundle(models, "tiny-faces", "detect", input=spec)
    tiny.write_bundle(models, "tiny-person", "detect", labels=["person"], input=spec)
    tiny.write_crowd(models, "crowd", CROWD)
    tiny.write_bundle(models, "tiny-classify", "classify")
    photo = folder / "chelsea.jpg"
    photo.write_bytes(photo_bytes())
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {"APPLIANCE_AUTH_INFER_TOKEN": TOKEN, "APPLIANCE_AUTH_RATE_PER_MINUTE": "0",
           "APPLIANCE_MODELS_INTRA_OP_THREADS": "1",
           "APPLIANCE_COMPAT_DETECTION_MODEL": "tiny-person",
           "APPLIANCE_COMPAT_FACE_MODEL": "tiny-faces",
           "APPLIANCE_COMPAT_SCENE_MODEL": "tiny-classify",
           "APPLIANCE_COMPAT_ZMQ_ENDPOINT": endpoint, "APPLIANCE_COMPAT_ZMQ_ALLOW": "127.0.0.1"}
    with LiveServer(models, folder / "state", env=env) as live:
        live.wait_ready()
        yield Box(live, endpoint, photo)


def _run_client(box: Box, script: str, url: str) -> dict:
    if not CLIENTS.exists():
        pytest.skip(f"needs the client libraries in {CLIENTS} (make clients-venv)")
    done = subprocess.run([str(CLIENTS), str(SCRIPTS / script), url, str(box.photo)],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "BOX_TOKEN": TOKEN,
                               "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _ok(results: dict, name: str):
    assert results[name]["ok"], results[name]
    return results[name]["value"]


def _raised(results: dict, name: str, words: str = "") -> None:
    assert not results[name]["ok"], results[name]
    assert words in results[name]["message"], results[name]


def test_deepstack_python(box):
    results = _run_client(box, "deepstack_python.py", box.url)
    person = _ok(results, "object.detect")
    assert [p["label"] for p in person] == ["person"] and person[0]["confidence"] > 0.45
    crowd = _ok(results, "custom crowd.detect")
    assert len(crowd) == 20 and {p["label"] for p in crowd} == set(CROWD)
    assert [p["confidence"] for p in crowd] == sorted((p["confidence"] for p in crowd),
                                                      reverse=True)
    scene = _ok(results, "scene.recognize")
    assert set(scene) >= {"label", "confidence"} and scene["label"]
    faces = _ok(results, "face.detect")
    assert len(faces) == 1 and faces[0]["label"] == "face"
    assert _ok(results, "face.get_registered_faces") == []
    _raised(results, "face.register", "status code: 403")
    _raised(results, "face.recognize", "status code: 403")
    _raised(results, "custom no-such-model.detect", "raised error 404")
    for wrong in (" wrong token", " no token"):
        for call in ("object.detect", "custom crowd.detect", "scene.recognize", "face.detect",
                     "face.register", "face.recognize"):
            _raised(results, call + wrong, "status code: 401")
        _raised(results, "face.get_registered_faces" + wrong)  # KeyError 'faces': no status check


def test_deepstack_sdk(box):
    results = _run_client(box, "sdk_client.py", box.url)
    person = _ok(results, "Detection.detectObject")
    assert [d["label"] for d in person] == ["person"]
    crowd = _ok(results, "Detection(crowd).detectObject")
    assert len(crowd) == 20 and crowd[0]["confidence"] >= crowd[-1]["confidence"] >= 0.4
    assert _ok(results, "SceneRecognition.recognizeScene")["label"]
    assert len(_ok(results, "Face.detectFace")) == 1
    assert _ok(results, "Face.listFaces") == []
    _raised(results, "Face.registerFace", "not enabled on the DeepStack server")
    _raised(results, "Face.recognizeFace", "not enabled on the DeepStack server")
    for wrong in (" wrong token", " no token"):
        for call in ("Detection.detectObject", "Detection(crowd).detectObject",
                     "SceneRecognition.recognizeScene", "Face.detectFace", "Face.listFaces"):
            _raised(results, call + wrong, "Unknown error : 401")


def test_pydoods(box):
    results = _run_client(box, "pydoods_client.py", box.url + "/doods")
    detectors = {d["name"]: d for d in _ok(results, "PyDOODS()")["detectors"]}
    assert set(detectors) == {"default", "tiny-person", "tiny-faces", "crowd"}
    assert detectors["default"]["model"] == "tiny-person"
    assert detectors["crowd"]["labels"] == CROWD
    for wrong in (" wrong token", " no token"):
        _raised(results, "PyDOODS()" + wrong, "401 Client Error")
    faces = _ok(results, "detect tiny-faces {face: 50}")["detections"]
    assert [d["label"] for d in faces] == ["face"] and faces[0]["confidence"] >= 50
    assert all(0 <= faces[0][edge] <= 1 for edge in ("top", "left", "bottom", "right"))
    assert [d["label"] for d in _ok(results, "detect default {*: 0}")["detections"]] == \
        ["person"]
    crowd = _ok(results, "detect crowd {person: 50}")["detections"]
    assert crowd and {d["label"] for d in crowd} == {"person"}
    assert all(d["confidence"] >= 50 for d in crowd)
    _raised(results, "detect no-such-model", "404 Client Error")
    _raised(results, "detect not an image", "415 Client Error")  # DOODS keeps 415


def _frigate_input(data: bytes) -> np.ndarray:
    return frigate_clients.model_input(Image.open(io.BytesIO(data)))


def test_frigates_deepstack_detector(box):
    tensor = _frigate_input(box.photo.read_bytes())
    plain = frigate_clients.DeepstackDetector(box.url + "/v1/vision/detection", TOKEN)
    crowd = frigate_clients.DeepstackDetector(box.url + "/v1/vision/custom/crowd", TOKEN)
    faces = frigate_clients.DeepstackDetector(box.url + "/v1/vision/face", TOKEN)
    answered = []
    for detector, calls in ((plain, 20), (crowd, 20), (faces, 5)):
        for _ in range(calls):
            with contextlib.suppress(requests.Timeout):  # Frigate's 0.1 s, on a busy box
                answered.append((detector, detector.detect_raw(tensor)))
    timeouts = sum(d.outcomes["timeout"] for d in (plain, crowd, faces))
    assert timeouts <= 4, (plain.outcomes, crowd.outcomes, faces.outcomes)
    for detector, rows in answered:
        assert frigate_clients.well_formed(rows)
        used = int(np.count_nonzero(rows[:, 1]))
        # tiny-person: one person (id 0); crowd: exactly 20, never a 21st (no IndexError);
        # faces: Frigate's map has no "face", so its walk stops at once
        expected = {id(plain): 1, id(crowd): 20, id(faces): 0}[id(detector)]
        assert used == expected
        if detector is crowd:
            assert set(rows[:, 0].astype(int)) == {0, 2}  # person, car (trucks are cars)
    assert faces.outcomes["stopped at an unknown label"] >= 4
    wrong = frigate_clients.DeepstackDetector(box.url + "/v1/vision/detection", "wrong",
                                              api_timeout=5)
    assert not wrong.detect_raw(tensor).any() and wrong.outcomes["http 401"] == 1


def test_frigates_deepstack_detector_fails_on_a_21st_prediction_as_frigate_does():
    detector = frigate_clients.DeepstackDetector("http://127.0.0.1:9/")
    many = {"predictions": [{"label": "person", "confidence": 0.9, "x_min": 0, "y_min": 0,
                             "x_max": 1, "y_max": 1}] * 21}
    with pytest.raises(IndexError):
        detector.rows(many, 10, 10)


def test_frigates_zmq_detector(box):
    tensor = _frigate_input(box.photo.read_bytes())
    with frigate_clients.ZmqDetector(box.zmq, "/config/model_cache/ssd.onnx") as detector:
        assert detector.ready and detector.handshakes == [
            {"model_available": True, "model_loaded": True, "model": "tiny-person"}]
        replies = [detector.detect_raw(tensor) for _ in range(100)]
        assert detector.outcomes["timeout"] <= 4, detector.outcomes
        assert all(frigate_clients.well_formed(rows) for rows in replies)
        person = [rows for rows in replies if rows.any()]
        assert len(person) >= 96
        assert all(np.count_nonzero(rows[:, 1]) == 1 and rows[0, 0] == 0 for rows in person)


HTTP_CASES = [  # (what, path, picture, form, status); the picture in field "image"
    ("detection, no image", "/v1/vision/detection", None, {}, 400),
    ("detection, field 'file'", "/v1/vision/detection", "photo", {"field": "file"}, 400),
    ("detection, min_confidence -1", "/v1/vision/detection", "photo",
     {"min_confidence": -1}, 400),
    ("detection, min_confidence abc", "/v1/vision/detection", "photo",
     {"min_confidence": "abc"}, 400),
    ("detection, 1x1 image", "/v1/vision/detection", "1x1", {}, 200),
    ("detection, not an image", "/v1/vision/detection", "junk", {}, 400),
    ("detection, wrong api_key", "/v1/vision/detection", "photo", {"api_key": "x"}, 401),
    ("detection, no api_key", "/v1/vision/detection", "photo", {"api_key": None}, 401),
    ("custom, unknown model", "/v1/vision/custom/no-such-model", "photo", {}, 404),
    ("custom, 1x1 image", "/v1/vision/custom/crowd", "1x1", {}, 200),
    ("face, no image", "/v1/vision/face", None, {}, 400),
    ("face, field 'upload'", "/v1/vision/face", "photo", {"field": "upload"}, 400),
    ("face, min_confidence abc", "/v1/vision/face", "photo", {"min_confidence": "abc"}, 400),
    ("scene, no image", "/v1/vision/scene", None, {}, 400),
    ("scene, 1x1 image", "/v1/vision/scene", "1x1", {}, 200),
    ("scene, wrong api_key", "/v1/vision/scene", "photo", {"api_key": "x"}, 401),
]
DOODS_CASES = [  # (what, body, headers, status)
    ("not JSON", b"{not json", {}, 400),
    ("JSON, not an object", b"[1, 2]", {}, 400),
    ("broken base64", json.dumps({"data": "%%%not base64%%%"}).encode(), {}, 400),
    ("base64 of junk", json.dumps({"data": base64.b64encode(b"junk").decode()}).encode(), {},
     415),
    ("no data", b"{}", {}, 400),
    ("unknown detector", json.dumps({"detector_name": "no-such-model",
                                     "data": "AAAA"}).encode(), {}, 404),
    ("detect of -5", json.dumps({"data": "AAAA", "detect": {"*": -5}}).encode(), {}, 400),
    ("wrong auth key", b"{}", {"doods-auth-key": "x"}, 401),
]


def test_bad_input_over_http_gets_its_status_and_every_status_is_counted(box):
    pictures = {"photo": box.photo.read_bytes(), "1x1": image_bytes(size=(1, 1)),
                "junk": b"this is not a picture"}
    seen: Counter = Counter()
    before = box.metrics()
    for what, path, picture, form, status in HTTP_CASES:
        response = box.post(path, pictures.get(picture), **form)
        assert response.status_code == status, (what, response.text)
        body = response.json()
        assert body["success"] is (status == 200), (what, body)
        assert status == 200 or body["error"], what
        seen[status] += 1
    for what, body, headers, status in DOODS_CASES:
        response = requests.post(box.url + "/doods/detect", data=body, timeout=10,
                                 headers={"Content-Type": "application/json",
                                          "doods-auth-key": TOKEN, **headers})
        assert response.status_code == status, (what, response.text)
        assert status == 200 or response.json()["error"], what
        seen[status] += 1
    after = box.metrics()
    assert {s: after[s] - before[s] for s in seen} == dict(seen)
    assert not any(status >= 500 for status in after), after


def _zmq_socket(context, endpoint: str, kind=None, timeout_ms: int = 2000):
    sock = context.socket(kind if kind is not None else zmq.REQ)
    for option, value in ((zmq.LINGER, 0), (zmq.RCVTIMEO, timeout_ms),
                          (zmq.SNDTIMEO, timeout_ms)):
        sock.setsockopt(option, value)
    sock.connect(endpoint)
    return sock


ZMQ_CASES = [  # (what, frames, words in the error)
    ("tensor of the wrong size",
     [b'{"shape": [1, 320, 320, 3], "dtype": "uint8"}', b"x" * 1000], "has 1000"),
    ("wrong dtype", [b'{"shape": [1, 8, 8, 3], "dtype": "int64"}', b"x" * 1536],
     "dtype must be one of"),
    ("garbage header", [b"\xff\xfe garbage", b"x" * 192], "first frame must be a JSON object"),
    ("3 frames", [b'{"shape": [1, 8, 8, 3], "dtype": "uint8"}', b"x" * 192, b"more"],
     "2 frames"),
    ("header only", [b'{"shape": [1, 8, 8, 3], "dtype": "uint8"}'], "2 frames"),
]


def test_bad_zmq_peers_leave_the_listener_and_the_api_serving(box):
    tensor = _frigate_input(box.photo.read_bytes())
    before = box.metrics()
    context = zmq.Context()
    try:
        sock = _zmq_socket(context, box.zmq)
        for what, frames, words in ZMQ_CASES:
            sock.send_multipart(frames)
            reply = sock.recv_multipart()
            assert len(reply) == 1 and words in json.loads(reply[0])["error"], what
            # Frigate reads such a reply as no detections
            assert not frigate_clients.decode(reply).any()
        sock.close(linger=0)
        assert box.metrics()[400] - before[400] == len(ZMQ_CASES)
        rude = [_zmq_socket(context, box.zmq, zmq.DEALER) for _ in range(3)]
        header = json.dumps({"shape": list(tensor.shape), "dtype": "uint8"}).encode()
        for peer in rude:  # REQ envelopes, sent and never read
            for _ in range(20):
                peer.send_multipart([b"", header, tensor.tobytes()])
        gone = _zmq_socket(context, box.zmq)  # a peer that sends and goes away
        gone.send_multipart([header, tensor.tobytes()])
        gone.close(linger=0)
        time.sleep(0.5)
        with frigate_clients.ZmqDetector(box.zmq, "model.onnx",
                                         request_timeout_ms=2000) as frigate:
            assert frigate.ready
            rows = frigate.detect_raw(tensor)
            assert frigate_clients.well_formed(rows) and rows[0, 1] > 0, frigate.outcomes
        response = box.post("/v1/vision/detection", box.photo.read_bytes())
        assert response.status_code == 200 and response.json()["predictions"]
        for peer in rude:
            peer.close(linger=0)
    finally:
        context.term()

