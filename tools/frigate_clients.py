"""Test clients that call the box the way Frigate's two remote detectors do, written from a
reading of `frigate/detectors/plugins/deepstack.py` and `zmq_ipc.py` (blakeblackshear/frigate;
no code copied). Frigate is not a package, so the tests and `tools/bench/compat.py` use these.

- `DeepstackDetector`: Frigate's model input (1xHxWx3 uint8) as a PIL JPEG at PIL's default
  quality, POSTed with `files={"image": ...}` and `data={"api_key": ...}` within 0.1 s; the
  predictions walked in order, stopping at the first below 0.4 or whose label is not in
  Frigate's label map (a truck counts as a car), written into a 20x6 float32 array. A 21st
  written prediction raises IndexError, as it does in Frigate; a timeout raises
  requests.Timeout, as it does there.
- `ZmqDetector`: a REQ socket with 200 ms send and receive timeouts and no linger; the model
  handshake first (30 s to answer; the model file is sent when the peer lacks it and the file
  exists); `[header, tensor]` per call; replies decoded from one 480-byte frame or
  `[header, bytes]`; zeros on any error, and on a timeout or ZMQError the socket is made
  again and the handshake repeated.

Each client counts how its calls ended in `outcomes`, so a test or a benchmark can say
what happened, not only whether something raised.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter
from collections.abc import Sequence

import numpy as np
from PIL import Image

from appliance.zmqdetector import FRIGATE_LABELS

ROWS, COLUMNS = 20, 6
MIN_CONFIDENCE = 0.4  # Frigate's deepstack detector stops at the first one below this


def labelmap(labels: Sequence[str] = FRIGATE_LABELS) -> dict[int, str]:
    """Frigate's label map as its detectors hold it: class id -> name."""
    return dict(enumerate(labels))


class DeepstackDetector:
    """Frigate's `deepstack` detector: `detect_raw(tensor)` -> 20x6 float32."""

    def __init__(self, api_url: str, api_key: str = "", api_timeout: float = 0.1,
                 labels: dict[int, str] | None = None) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.api_timeout = api_timeout
        self.labels = labels if labels is not None else labelmap()
        self.outcomes: Counter[str] = Counter()

    def label_index(self, name: str) -> int:
        """Frigate's id for a DeepStack label, -1 when its map lacks it (truck is car)."""
        wanted = "car" if name.lower() == "truck" else name.lower()
        return next((index for index, value in self.labels.items() if value == wanted), -1)

    def jpeg(self, tensor: np.ndarray) -> tuple[bytes, int, int]:
        """The JPEG Frigate sends for its model input, and the picture's width and height."""
        picture = Image.fromarray(np.squeeze(tensor).astype(np.uint8))
        with io.BytesIO() as buffer:
            picture.save(buffer, format="JPEG")  # PIL's default quality, as Frigate
            return buffer.getvalue(), picture.size[0], picture.size[1]

    def detect_raw(self, tensor: np.ndarray) -> np.ndarray:
        """One call. Raises requests' exceptions (a timeout among them) and IndexError on a
        21st prediction, as Frigate's detector does."""
        import requests

        data, width, height = self.jpeg(tensor)
        try:
            response = requests.post(self.api_url, data={"api_key": self.api_key},
                                     files={"image": data}, timeout=self.api_timeout)
        except requests.Timeout:
            self.outcomes["timeout"] += 1
            raise
        self.outcomes[f"http {response.status_code}"] += 1
        return self.rows(response.json(), width, height)

    def rows(self, answer: dict, width: int, height: int) -> np.ndarray:
        """Frigate's walk over `predictions` (no status check: it reads the JSON only)."""
        out = np.zeros((ROWS, COLUMNS), np.float32)
        predictions = answer.get("predictions")
        if predictions is None:
            self.outcomes["no predictions"] += 1
            return out
        for row, found in enumerate(predictions):
            if found["confidence"] < MIN_CONFIDENCE:
                break
            index = self.label_index(found["label"])
            if index < 0:
                self.outcomes["stopped at an unknown label"] += 1
                break
            out[row] = [index, float(found["confidence"]), found["y_min"] / height,
                        found["x_min"] / width, found["y_max"] / height,
                        found["x_max"] / width]  # IndexError at row 20, as in Frigate
        return out


class ZmqDetector:
    """Frigate's `zmq` detector: handshake at start, `detect_raw(tensor)` -> 20x6 float32."""

    def __init__(self, endpoint: str, model_path: str = "/config/model_cache/model.onnx",
                 request_timeout_ms: int = 200, linger_ms: int = 0,
                 model_type: str = "ssd", handshake_timeout_ms: int = 30000) -> None:
        import zmq

        self.zmq = zmq
        self.context = zmq.Context()
        self.endpoint = endpoint
        self.model_path = model_path
        self.model_name = os.path.basename(model_path)
        self.model_type = model_type
        self.timeout_ms = request_timeout_ms
        self.linger_ms = linger_ms
        self.handshake_timeout_ms = handshake_timeout_ms
        self.zero = np.zeros((ROWS, COLUMNS), np.float32)
        self.outcomes: Counter[str] = Counter()
        self.handshakes: list[dict] = []
        self.socket = None
        self._connect()
        self.ready = self._handshake()

    def _connect(self) -> None:
        zmq = self.zmq
        if self.socket is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.socket.close(linger=self.linger_ms)
        self.socket = self.context.socket(zmq.REQ)
        for option, value in ((zmq.RCVTIMEO, self.timeout_ms), (zmq.SNDTIMEO, self.timeout_ms),
                              (zmq.LINGER, self.linger_ms)):
            self.socket.setsockopt(option, value)
        self.socket.connect(self.endpoint)

    def _ask_long(self, frames: list[bytes]) -> dict | None:
        """Send `frames`, wait up to the handshake timeout for one JSON frame (None else)."""
        zmq = self.zmq
        self.socket.send_multipart(frames)
        self.socket.setsockopt(zmq.RCVTIMEO, self.handshake_timeout_ms)
        try:
            reply = self.socket.recv_multipart()
        finally:
            self.socket.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        if len(reply) != 1:
            return None
        try:
            answer = json.loads(reply[0].decode("utf-8"))
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def _handshake(self) -> bool:
        """Frigate's model check: ready when the peer has the model loaded; the model file is
        offered when the peer lacks it. Never raises (Frigate logs and carries on)."""
        try:
            answer = self._ask_long([json.dumps({"model_request": True,
                                                 "model_name": self.model_name}).encode()])
            self.handshakes.append(answer or {})
            if not answer:
                return False
            available, loaded = answer.get("model_available"), answer.get("model_loaded")
            if available and loaded:
                return True
            if available:
                return False
            return self._send_model()
        except Exception:  # (Frigate catches everything here)
            self.outcomes["handshake failed"] += 1
            return False

    def _send_model(self) -> bool:
        if not os.path.exists(self.model_path):
            return False
        with open(self.model_path, "rb") as file:
            model = file.read()
        header = json.dumps({"model_data": True, "model_name": self.model_name}).encode()
        answer = self._ask_long([header, model])
        self.handshakes.append(answer or {})
        return bool(answer and answer.get("model_saved") and answer.get("model_loaded"))

    def header(self, tensor: np.ndarray) -> bytes:
        return json.dumps({"shape": list(tensor.shape), "dtype": tensor.dtype.name,
                           "model_type": self.model_type}).encode("utf-8")

    def decode(self, frames: list[bytes]) -> np.ndarray:
        return decode(frames, self.outcomes)

    def detect_raw(self, tensor: np.ndarray) -> np.ndarray:
        """One call; never raises, as Frigate's detector."""
        zmq = self.zmq
        if not self.ready:
            self.outcomes["model not ready"] += 1
            return self.zero
        try:
            self.socket.send_multipart([self.header(tensor),
                                        memoryview(tensor.tobytes(order="C"))])
            rows = self.decode(self.socket.recv_multipart())
            self.outcomes["answered"] += 1
            return rows
        except zmq.Again:
            self.outcomes["timeout"] += 1
            self._reset()
        except zmq.ZMQError:
            self.outcomes["zmq error"] += 1
            self._reset()
        except Exception:
            self.outcomes["error"] += 1
        return self.zero

    def _reset(self) -> None:
        """What Frigate does after a timeout: a new socket and the handshake again."""
        try:
            self._connect()
            self.ready = self._handshake()
        except Exception:
            pass

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.context.term()

    def __enter__(self) -> ZmqDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode(frames: list[bytes], outcomes: Counter | None = None) -> np.ndarray:
    """A reply as Frigate's zmq detector reads it: one 480-byte frame, or [header, bytes];
    zeros on anything else (counted in `outcomes`)."""
    outcomes = outcomes if outcomes is not None else Counter()
    zero = np.zeros((ROWS, COLUMNS), np.float32)
    try:
        if len(frames) == 1:
            if len(frames[0]) != ROWS * COLUMNS * 4:
                outcomes["reply of the wrong size"] += 1
                return zero
            return np.frombuffer(frames[0], np.float32).reshape(ROWS, COLUMNS)
        if len(frames) >= 2:
            head = json.loads(frames[0].decode("utf-8"))
            return np.frombuffer(frames[1], np.dtype(head.get("dtype", "float32"))) \
                .reshape(tuple(head.get("shape", [])))
        outcomes["empty reply"] += 1
        return zero
    except Exception:  # (Frigate answers zeros on any decoding error)
        outcomes["undecodable reply"] += 1
        return zero


def well_formed(rows: np.ndarray) -> bool:
    """A reply Frigate can use: 20x6 float32, scores best first, zero rows only after the
    last detection, class ids whole, edges within 0-1 and ordered."""
    if rows.shape != (ROWS, COLUMNS) or rows.dtype != np.float32:
        return False
    scores = rows[:, 1]
    used = int(np.count_nonzero(scores))
    if np.any(scores[:used] == 0) or np.any(rows[used:] != 0):
        return False
    found = rows[:used]
    return bool(np.all(np.diff(found[:, 1]) <= 0) and np.all(found[:, 0] == np.round(found[:, 0]))
                and np.all((found[:, 2:] >= 0) & (found[:, 2:] <= 1))
                and np.all(found[:, 2] <= found[:, 4]) and np.all(found[:, 3] <= found[:, 5]))


def model_input(picture: Image.Image, size: int = 320) -> np.ndarray:
    """Frigate's model input for a picture: 1 x size x size x 3 uint8 RGB."""
    return np.asarray(picture.convert("RGB").resize((size, size)), np.uint8)[None]
