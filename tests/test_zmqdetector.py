"""Frigate's zmq detector protocol against the real listener on a loopback TCP socket and real
onnxruntime sessions: the handshake, tensors in and 20x6 rows out in Frigate's label ids, the
refusal of pushed models, the address allow-list, and malformed peers that must not stop it."""

import contextlib
import io
import json
import struct
import time

import numpy as np
import pytest
from PIL import Image

from appliance import config, zmqdetector
from appliance.errors import ConfigError
from appliance.services import Services
from tests import models as tiny
from tests.conftest import ADMIN, photo_bytes

zmq = pytest.importorskip("zmq", reason="pyzmq is not installed (pip install pyzmq)")

CROWD_LABELS = ["person", "unicorn", "truck"]  # unicorn: not in Frigate's label map


@pytest.fixture
def models_dir(models_dir):
    tiny.write_crowd(models_dir, "crowd", CROWD_LABELS)
    return models_dir


@pytest.fixture
def listener(services):
    """The listener on a free loopback port, for `crowd`."""
    services.settings.compat.detection_model = "crowd"
    detector = zmqdetector.ZmqDetector(services, "tcp://127.0.0.1:0",
                                       zmqdetector.read_labelmap(""))
    detector.start()
    yield detector
    detector.close()


@pytest.fixture
def peer(listener):
    """A REQ socket as Frigate makes it: 200 ms timeouts, no linger."""
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    for option, value in ((zmq.RCVTIMEO, 2000), (zmq.SNDTIMEO, 2000), (zmq.LINGER, 0)):
        sock.setsockopt(option, value)
    sock.connect(listener.bound)
    yield sock
    sock.close(linger=0)
    context.term()


def _ask(sock, *frames: bytes) -> list[bytes]:
    sock.send_multipart(list(frames))
    return sock.recv_multipart()


def _tensor(shape=(1, 320, 320, 3), dtype="uint8", picture=None) -> tuple[bytes, bytes]:
    image = picture or Image.open(io.BytesIO(photo_bytes())).convert("RGB")
    array = np.asarray(image.resize((shape[2], shape[1])))[None].astype(dtype)
    header = json.dumps({"shape": list(array.shape), "dtype": dtype, "model_type": "ssd"})
    return header.encode(), array.tobytes()


def _rows(frames: list[bytes]) -> np.ndarray:
    assert len(frames) == 1 and len(frames[0]) == 20 * 6 * 4, frames
    return np.frombuffer(frames[0], np.float32).reshape(20, 6)


def test_the_handshake_names_the_serving_model(peer):
    for name in ("/config/model_cache/yolov9.onnx", "crowd.onnx", None):
        reply = json.loads(_ask(peer, json.dumps({"model_request": True,
                                                  "model_name": name}).encode())[0])
        assert reply == {"model_available": True, "model_loaded": True, "model": "crowd"}


def test_the_handshake_and_inference_agree_on_the_model(peer, services):
    """Frigate's inference requests carry no model name: naming another bundle in the
    handshake must not promise what inference will not run."""
    reply = json.loads(_ask(peer, b'{"model_request": true, "model_name": "tiny-faces.onnx"}')
                       [0])
    assert reply["model"] == "crowd"
    _ask(peer, *_tensor((1, 16, 16, 3)))
    assert services.metrics.requests("crowd", 200) == 1


def test_the_handshake_says_when_the_model_is_not_serving(peer, services):
    services.settings.compat.detection_model = "not-installed"
    reply = json.loads(_ask(peer, b'{"model_request": true, "model_name": "x.onnx"}')[0])
    assert reply["model_available"] is False and reply["model_loaded"] is False


def test_tensors_in_twenty_rows_out_in_frigates_ids(peer):
    rows = _rows(_ask(peer, *_tensor()))
    found = rows[rows[:, 1] > 0]
    assert len(found) == 20  # 30 boxes, a third of them unicorns, capped at 20
    # person 0; truck is car (2), as Frigate's own detectors answer (its map has no truck)
    assert set(found[:, 0].astype(int)) == {0, 2}
    assert list(found[:, 1]) == sorted(found[:, 1], reverse=True)
    assert np.all((found[:, 2:] >= 0) & (found[:, 2:] <= 1))
    assert np.all(found[:, 2] < found[:, 4]) and np.all(found[:, 3] < found[:, 5])


def test_rows_are_the_http_answer_normalised(peer, client):
    header, data = _tensor((1, 64, 64, 3))
    rows = _rows(_ask(peer, header, data))
    picture = Image.frombytes("RGB", (64, 64), data)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    http = client.post("/v1/models/crowd/infer?threshold=0.4", data=buffer.getvalue(),
                       content_type="image/png").get_json()["detections"]
    first = next(d for d in http if d["label"] == "person")
    x0, y0, x1, y1 = first["box"]
    assert rows[0, 1] == pytest.approx(first["score"], abs=1e-4)
    assert rows[0, 2:] == pytest.approx([y0 / 64, x0 / 64, y1 / 64, x1 / 64], abs=2e-3)


def test_nchw_and_float_tensors_give_the_same_rows(peer):
    header, data = _tensor((1, 32, 32, 3))
    expected = _rows(_ask(peer, header, data))
    array = np.frombuffer(data, np.uint8).reshape(1, 32, 32, 3)
    for tensor in (array.transpose(0, 3, 1, 2), array.astype(np.float32),
                   array.astype(np.float32) / 255, array[0]):
        head = json.dumps({"shape": list(tensor.shape), "dtype": tensor.dtype.name})
        got = _rows(_ask(peer, head.encode(), np.ascontiguousarray(tensor).tobytes()))
        assert got == pytest.approx(expected, abs=2e-3)


def test_a_pushed_model_is_never_loaded(peer, models_dir):
    before = sorted(p.name for p in models_dir.iterdir())
    reply = json.loads(_ask(peer, b'{"model_data": true, "model_name": "evil.onnx"}',
                            b"\x08\x01" * 1000)[0])
    assert reply["model_saved"] is False and reply["model_loaded"] is False
    assert "never loads a model sent over the network" in reply["error"]
    assert sorted(p.name for p in models_dir.iterdir()) == before


@pytest.mark.parametrize("frames, words", [
    ([b"not json"], "first frame must be a JSON object"),
    ([b"[1, 2]"], "first frame must be a JSON object"),
    ([b'{"shape": [1, 8, 8, 3], "dtype": "uint8"}'], "2 frames"),
    ([b"[" * 60000, b"x"], "first frame must be a JSON object"),  # was a RecursionError
    ([b'{"shape": [1, 8, 8, 3], "dtype": "uint8"}', b"x" * 100], "has 100"),
    ([b'{"shape": [1, 8, 8, 3], "dtype": "int64"}', b"x" * 1536], "dtype must be one of"),
    ([b'{"shape": [2, 8, 8, 3], "dtype": "uint8"}', b"x" * 384], "one picture at a time"),
    ([b'{"shape": [1, 8, 8, 4], "dtype": "uint8"}', b"x" * 256], "no 3-channel axis"),
    ([b'{"shape": [1, -8, 8, 3], "dtype": "uint8"}', b"x"], "whole numbers"),
    ([b'{"shape": "big", "dtype": "uint8"}', b"x"], "whole numbers"),
    ([b'{"shape": [1, 9000, 9000, 3], "dtype": "uint8"}', b"x"], "larger than 4096"),
    ([b'{"shape": [1, 8, 8, 3], "dtype": "uint8"}', b"x" * 192, b"extra"], "2 frames"),
])
def test_malformed_requests_get_an_error_frame(peer, frames, words):
    reply = _ask(peer, *frames)
    assert len(reply) == 1 and words in json.loads(reply[0])["error"]
    assert _rows(_ask(peer, *_tensor((1, 16, 16, 3)))).any()  # and it keeps serving


def test_a_frame_over_the_cap_drops_that_peer_only(listener, peer, settings):
    context = zmq.Context()
    greedy = context.socket(zmq.REQ)
    greedy.setsockopt(zmq.LINGER, 0)
    greedy.setsockopt(zmq.RCVTIMEO, 500)
    greedy.connect(listener.bound)
    greedy.send_multipart([b'{"shape": [1, 8, 8, 3], "dtype": "uint8"}',
                           b"x" * (listener.max_bytes + zmqdetector.MAX_HEADER + 1)])
    with pytest.raises(zmq.Again):  # the listener dropped the connection, answered nothing
        greedy.recv_multipart()
    greedy.close(linger=0)
    context.term()
    assert _rows(_ask(peer, *_tensor((1, 16, 16, 3)))).any()


def test_a_peer_that_never_reads_does_not_stop_the_listener(listener, peer):
    context = zmq.Context()
    rude = [context.socket(zmq.DEALER) for _ in range(3)]
    for sock in rude:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(listener.bound)
        for _ in range(20):  # REQ envelopes, never read
            sock.send_multipart([b"", *_tensor((1, 16, 16, 3))])
    time.sleep(0.5)
    assert _rows(_ask(peer, *_tensor((1, 16, 16, 3)))).any()
    for sock in rude:
        sock.close(linger=0)
    context.term()


def test_requests_are_counted_under_the_model(peer, services):
    _ask(peer, *_tensor((1, 16, 16, 3)))
    _ask(peer, b"garbage")
    assert services.metrics.requests("crowd", 200) == 1
    assert services.metrics.requests("crowd", 400) + \
        services.metrics.requests("_unknown", 400) == 1


@contextlib.contextmanager
def _client(endpoint: str, timeout_ms: int):
    """A REQ socket on `endpoint`, closed before its context ends (else term() waits)."""
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    for option, value in ((zmq.LINGER, 0), (zmq.RCVTIMEO, timeout_ms),
                          (zmq.SNDTIMEO, timeout_ms)):
        sock.setsockopt(option, value)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(linger=0)
        context.term()


@pytest.mark.parametrize("allow, served", [(("192.0.2.1",), False), (("127.0.0.1",), True)])
def test_only_allowed_addresses_are_served(services, allow, served):
    services.settings.compat.detection_model = "crowd"
    detector = zmqdetector.ZmqDetector(services, "tcp://127.0.0.1:0",
                                       zmqdetector.read_labelmap(""), allow=allow)
    detector.start()
    try:
        with _client(detector.bound, 1000) as sock:
            try:
                rows = _rows(_ask(sock, *_tensor((1, 16, 16, 3))))
            except zmq.Again:  # refused: no connection to send on, or no answer
                rows = None
        assert (rows is not None and rows.any()) == served
    finally:
        detector.close()


def test_a_labelmap_file_renumbers_the_classes(tmp_path):
    path = tmp_path / "labelmap.txt"
    path.write_text("0  truck\n5  person\n\n", encoding="utf-8")
    assert zmqdetector.read_labelmap(str(path)) == {"truck": 0, "person": 5}
    path.write_text("person\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="labelmap.txt:1"):
        zmqdetector.read_labelmap(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        zmqdetector.read_labelmap(str(tmp_path / "missing.txt"))


def test_frigates_default_labelmap_is_its_own():
    labels = zmqdetector.read_labelmap("")
    assert (labels["person"], labels["car"], labels["boat"], labels["toothbrush"]) == \
        (0, 2, 7, 88)
    assert "truck" not in labels
    assert len(labels) == 90


def test_settings_refuse_an_open_zmq_port_on_a_box_with_a_token(tmp_path):
    base = {"state.dir": str(tmp_path), "compat.zmq_endpoint": "tcp://0.0.0.0:5555",
            "auth.infer_token": "a-long-enough-token-123"}
    with pytest.raises(ConfigError, match="compat.zmq_allow"):
        config.load(env={}, overrides=base)
    assert config.load(env={}, overrides={**base, "compat.zmq_allow": "10.0.0.2"})
    with pytest.raises(ConfigError, match="a tcp:// endpoint"):
        config.load(env={}, overrides={"compat.zmq_endpoint": "udp://x:1"})


def test_start_is_off_by_default_and_the_endpoint_is_tcp(settings):
    with Services.build(settings, admin=ADMIN) as svc:
        assert zmqdetector.start(svc) is None
    for endpoint in ("tcp://box", "tcp://:5555", "tcp://box:99999", "ipc:///tmp/x"):
        with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
            zmqdetector.parse_endpoint(endpoint)
    assert zmqdetector.parse_endpoint("tcp://*:5555") == ("0.0.0.0", 5555)
    assert zmqdetector.parse_endpoint("tcp://[::1]:5555") == ("::1", 5555)


def test_an_endpoint_in_use_is_a_config_error(listener, services):
    other = zmqdetector.ZmqDetector(services, listener.bound, zmqdetector.read_labelmap(""))
    with pytest.raises(ConfigError, match="cannot listen"):
        other.start()


def _raw_peer(listener):
    """A ZMTP peer by hand (greeting, READY as REQ), free to break the rules."""
    import socket

    from appliance import zmtp

    host, port = listener.bound.removeprefix("tcp://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(zmtp.GREETING)
    assert len(zmtp._exactly(sock, 64)) == 64
    sock.sendall(zmtp._command(b"READY", {b"Socket-Type": b"REQ"}))
    zmtp._frame(sock, zmtp.MAX_COMMAND)
    return sock


def _closed(sock, frames) -> bool:
    """Send frames until the box hangs up; True when it did (False when it still waits)."""
    try:
        for frame in frames:
            sock.sendall(frame)
        sock.settimeout(3)
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:  # reset or broken pipe: it hung up
        return True


def test_row40_a_message_that_never_ends_is_cut_off_at_its_bound(listener, peer):
    """libzmq kept every frame of an unfinished message: 380 MB a second from one peer."""
    from appliance import zmtp

    chunk = b"x" * (1 << 20)
    frame = struct.pack(">BQ", zmtp.MORE | zmtp.LONG, len(chunk)) + chunk
    sock = _raw_peer(listener)
    rounds = (listener.max_bytes + zmqdetector.MAX_HEADER) // len(chunk) + 4
    assert _closed(sock, [b"\x01\x00", *[frame] * rounds])
    sock.close()
    many = _raw_peer(listener)  # 5 million empty frames grew it 305 MB
    assert _closed(many, [b"\x01\x00" * 10])
    many.close()
    assert _rows(_ask(peer, *_tensor((1, 16, 16, 3)))).any()


def test_row40_idle_connections_are_capped_and_time_out(listener):
    import socket

    host, port = listener.bound.removeprefix("tcp://").rsplit(":", 1)
    idle = [socket.create_connection((host, int(port))) for _ in range(40)]
    time.sleep(0.5)
    refused = 0
    for sock in idle[20:]:
        sock.settimeout(1)
        try:
            refused += sock.recv(1) == b""
        except OSError:
            refused += 1
    assert refused == 20  # past the cap of 16 peers: closed before a byte is read
    time.sleep(zmqdetector.zmtp.Limits(1).handshake_s + 0.5)  # the idle ones time out
    with _client(listener.bound, 2000) as sock:
        assert _rows(_ask(sock, *_tensor((1, 16, 16, 3)))).any()
    for sock in idle:
        sock.close()


def test_requests_are_counted_in_the_usage_ledger_and_its_quota(peer, services):
    """Frigate's detector goes through the admission path's terms, quota and ledger: its
    requests carry no token, so they count, and are capped, as 'none'."""
    services.ledger.quotas = {"none": 2}
    assert _rows(_ask(peer, *_tensor((1, 16, 16, 3)))).any()
    _ask(peer, b"garbage")  # refused before the model: not charged, not counted
    assert _rows(_ask(peer, *_tensor((1, 16, 16, 3)))).any()
    [frame] = _ask(peer, *_tensor((1, 16, 16, 3)))
    assert "daily quota of the 'none' token is spent" in json.loads(frame)["error"]
    rows = services.ledger.rows("crowd")
    assert [(r.token, r.answered, r.failed) for r in rows] == [("none", 2, 0)]
    assert services.metrics.requests("crowd", 429) == 1


def test_a_model_that_requires_a_token_does_not_answer_frigate(peer, services, models_dir):
    tiny.write_crowd(models_dir, "members", CROWD_LABELS)
    manifest = json.loads((models_dir / "members" / "manifest.json").read_text())
    manifest["terms"] = {"requires_token": True}
    (models_dir / "members" / "manifest.json").write_text(json.dumps(manifest))
    services.registry.load_all()
    services.settings.compat.detection_model = "members"
    [frame] = _ask(peer, *_tensor((1, 16, 16, 3)))
    assert "model members answers only with a token" in json.loads(frame)["error"]
