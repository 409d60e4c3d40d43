"""Frigate's remote detector (`detectors: {x: {type: zmq, endpoint: tcp://BOX:5555}}`) over
ZeroMQ REQ/REP, as `frigate/detectors/plugins/zmq_ipc.py` speaks it.

- Handshake: one JSON frame `{"model_request": true, "model_name": ...}` answered
  `{"model_available", "model_loaded", "model"}`: true when `compat.detection_model` is
  serving. Frigate's model name is not honoured: its inference requests carry no name, and
  a REP socket cannot tell which peer shook hands, so every request runs that one bundle.
- Model upload (`{"model_data": true}` plus ONNX bytes): always refused with the reason. The
  box never loads a model a network peer sends; its owner installs bundles.
- Inference: `[{"shape", "dtype"}, C-order tensor bytes]`, Frigate's own model input (one
  RGB picture, NHWC or NCHW, uint8 or float32), answered with one frame of 20x6 float32
  rows (Frigate's class id, score, y_min, x_min, y_max, x_max in 0-1), best first, zero rows
  after the last; a truck is a car (Frigate's map has no truck, and its own detectors do
  the same), other classes the label map lacks are left out.
- Anything else gets one JSON frame `{"error": "..."}` (Frigate reads it as no detections).

Bounds (appliance/zmtp.py, ZeroMQ's wire protocol in the standard library, because libzmq
cannot bound a whole message): one request at a time; a request at most `server.max_upload_mb`
plus a 64 KB header in all, and at most four frames (a peer past either is disconnected);
at most 16 connections, each with 2 s to greet and 120 s between requests;
`compat.zmq_allow` refuses other addresses before a byte is read. No pyzmq on the box.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance import compat, pipeline, safejson, zmtp
from appliance.api.admission import charge, count
from appliance.errors import ApplianceError, BadRequest, ConfigError
from appliance.ledger import NO_TOKEN

log = logging.getLogger(__name__)
ROWS = 20  # Frigate's detectors answer a 20x6 array; a 21st row fails in Frigate
MIN_SCORE = 0.4  # the lowest score sent: Frigate's own filters start at 0.5
MAX_FRAMES = 2  # a header and a tensor; a peer sending more than twice as many is dropped
MAX_HEADER = 65536
MAX_SIDE = 4096
DTYPES = ("uint8", "float32")
# Frigate's label map has no truck: its own detectors answer trucks as cars.
ALIASES = {"truck": "car"}
# Frigate's default label map (labelmap.txt in blakeblackshear/frigate): id -> name.
FRIGATE_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror",
    "dining table", "window", "desk", "toilet", "door", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "blender", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
    "hair brush")


def read_labelmap(path: str) -> dict[str, int]:
    """Label name -> Frigate class id, from a labelmap file ('ID NAME' lines), or Frigate's
    default map when `path` is empty. Raises ConfigError for a file that cannot be read."""
    if not path:
        return {name: index for index, name in enumerate(FRIGATE_LABELS)}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"setting 'compat.zmq_labelmap': cannot read {path} ({exc})") \
            from None
    labels = {}
    for number, line in enumerate(lines, 1):
        index, _, name = line.strip().partition(" ")
        if not line.strip():
            continue
        if not index.isdigit() or not name.strip():
            raise ConfigError(f"{path}:{number}: expected 'ID NAME' (Frigate's labelmap "
                              f"format), got {line[:60]!r}")
        labels.setdefault(name.strip(), int(index))
    return labels


@dataclass
class Reply:
    """The frames sent back, and the status the request is counted under in /metrics."""

    frames: list[bytes]
    status: int = 200
    model: str | None = None
    charged: bool = False  # admitted by the model's terms and the daily quota: in the ledger


class ZmqDetector:
    """The listener: a bounded ZMTP server (appliance/zmtp.py) until `close()`."""

    def __init__(self, services, endpoint: str, labelmap: dict[str, int],
                 allow: tuple[str, ...] = ()) -> None:
        self.services = services
        self.endpoint = endpoint
        self.labelmap = labelmap
        self.allow = allow
        self.max_bytes = int(services.settings.server.max_upload_mb * 1024 * 1024)
        self._server: zmtp.Server | None = None
        self.bound = ""  # the endpoint actually bound (tcp://...:0 picks a port)

    def start(self) -> None:
        """Listen and serve in threads. Raises ConfigError when the endpoint is not
        tcp://HOST:PORT or cannot be bound."""
        host, port = parse_endpoint(self.endpoint)
        limits = zmtp.Limits(max_bytes=self.max_bytes + MAX_HEADER, max_frames=MAX_FRAMES * 2)
        try:
            self._server = zmtp.Server(host, port, self._handle, limits, self.allow)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"setting 'compat.zmq_endpoint': cannot listen on "
                              f"{self.endpoint} ({exc})") from None
        address, port = self._server.address
        self.bound = f"tcp://{address}:{port}"
        self._server.start()
        log.info("Frigate's zmq detector listens on %s", self.bound)

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.close()

    def _handle(self, frames: list[bytes]) -> list[bytes]:
        started = time.perf_counter()
        reply = self.answer(frames)
        if reply.model is not None or reply.status != 200:
            name = reply.model or self.services.settings.compat.detection_model
            count(self.services, name, reply.status, time.perf_counter() - started,
                  NO_TOKEN if reply.charged else None)
        return reply.frames

    def answer(self, frames: list[bytes]) -> Reply:
        """The reply to one request's frames (never raises)."""
        try:
            header = _header(frames[0] if frames else b"")
            if header.get("model_request"):
                return self._handshake(header)
            if header.get("model_data"):
                return _refuse_model(header)
            if len(frames) != MAX_FRAMES:
                raise BadRequest(f"an inference request is {MAX_FRAMES} frames (a JSON header "
                                 f"and the tensor's bytes), got {len(frames)}")
            return self._detect(header, frames[1])
        except ApplianceError as exc:
            return Reply([_json({"error": exc.message})], exc.status)
        except Exception:  # one peer's request never stops the listener
            log.exception("zmq detector: unexpected error")
            return Reply([_json({"error": "the box hit an unexpected error; it is logged"})],
                         500)

    def _handshake(self, header: dict[str, Any]) -> Reply:
        name = self.services.settings.compat.detection_model
        loaded = name in self.services.registry.runners()
        if loaded:
            log.info("Frigate's zmq detector asked for %r: %s answers it",
                     str(header.get("model_name"))[:100], name)
        return Reply([_json({"model_available": loaded, "model_loaded": loaded,
                             "model": name})], 200 if loaded else 503)

    def _detect(self, header: dict[str, Any], data: bytes) -> Reply:
        name = self.services.settings.compat.detection_model
        runner = compat.runner(self.services.registry, name, ("detect",), "the zmq detector")
        image = _picture(header, data)
        charge(self.services, name, NO_TOKEN)  # Frigate's protocol carries no token
        try:
            answer = pipeline.infer_image(runner, image, {"threshold": str(MIN_SCORE)})
        except ApplianceError as exc:
            return Reply([_json({"error": exc.message})], exc.status, name, charged=True)
        return Reply([self.rows(compat.detections(answer), image.size).tobytes()], 200, name,
                     charged=True)

    def rows(self, found: list[compat.Detection], size: tuple[int, int]) -> np.ndarray:
        """Frigate's 20x6 float32 answer: known classes only, best first."""
        width, height = size
        out = np.zeros((ROWS, 6), np.float32)
        known = [(ids, d) for d in found
                 if (ids := self.class_id(d.label)) is not None][:ROWS]
        for row, (class_id, d) in enumerate(known):
            x0, y0, x1, y1 = d.box
            out[row] = (class_id, d.score, y0 / height, x0 / width, y1 / height, x1 / width)
        return out

    def class_id(self, label: str) -> int | None:
        """Frigate's id for `label` (a truck is a car where the map has no truck)."""
        found = self.labelmap.get(label)
        return found if found is not None else self.labelmap.get(ALIASES.get(label, ""))


def _header(frame: bytes) -> dict[str, Any]:
    try:
        header = safejson.loads(frame) if len(frame) <= MAX_HEADER else None
    except BadRequest:  # not UTF-8, not JSON, nested too deep
        header = None
    if not isinstance(header, dict):
        raise BadRequest('the first frame must be a JSON object: {"shape": [1, 320, 320, 3], '
                         '"dtype": "uint8"} (or a model_request)')
    return header


def _refuse_model(header: dict[str, Any]) -> Reply:
    message = ("this box never loads a model sent over the network: its owner installs "
               "bundles (PUT /v1/models/NAME with the admin token) and names the one Frigate "
               "uses in compat.detection_model")
    return Reply([_json({"model_saved": False, "model_loaded": False, "error": message})], 403)


def _picture(header: dict[str, Any], data: bytes) -> Image.Image:
    """Frigate's tensor as an RGB picture. Raises BadRequest naming what is wrong."""
    shape, dtype = header.get("shape"), header.get("dtype")
    if dtype not in DTYPES:
        raise BadRequest(f"dtype must be one of {', '.join(DTYPES)}, got {str(dtype)[:20]!r}")
    if not (isinstance(shape, list) and len(shape) in (3, 4)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise BadRequest(f"shape must be [1, H, W, 3] or [1, 3, H, W] in whole numbers, got "
                         f"{str(shape)[:60]}")
    dims = shape[1:] if len(shape) == 4 else shape
    if len(shape) == 4 and shape[0] != 1:
        raise BadRequest(f"one picture at a time: the batch is {shape[0]}")
    channels_last = dims[-1] == 3
    if not channels_last and dims[0] != 3:
        raise BadRequest(f"shape {shape} has no 3-channel axis: send RGB")
    height, width = dims[:2] if channels_last else dims[1:]
    if max(height, width) > MAX_SIDE:
        raise BadRequest(f"{width}x{height} is larger than {MAX_SIDE} pixels a side")
    expected = 3 * height * width * np.dtype(dtype).itemsize
    if len(data) != expected:
        raise BadRequest(f"shape {shape} of {dtype} is {expected} bytes; the tensor frame "
                         f"has {len(data)}")
    array = np.frombuffer(data, dtype).reshape(dims)
    if not channels_last:
        array = array.transpose(1, 2, 0)
    if dtype == "float32":
        # Frigate sends floats as 0-255 or, normalised, 0-1.
        array = np.nan_to_num(array, nan=0.0, posinf=255.0, neginf=0.0)
        scale = 255.0 if float(array.max()) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode("utf-8")


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """(host, port) of tcp://HOST:PORT (`*` for every address). Raises ConfigError."""
    rest = endpoint.removeprefix("tcp://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if rest == endpoint or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"setting 'compat.zmq_endpoint': {endpoint!r} is not "
                          "tcp://HOST:PORT (e.g. tcp://0.0.0.0:5555)")
    return ("0.0.0.0" if host == "*" else host), int(port)


def start(services) -> ZmqDetector | None:
    """The listener the settings ask for, started, or None when compat.zmq_endpoint is
    empty. Raises ConfigError (bad label map, endpoint taken)."""
    settings = services.settings.compat
    if not settings.zmq_endpoint:
        return None
    allow = tuple(a.strip() for a in settings.zmq_allow.split(",") if a.strip())
    detector = ZmqDetector(services, settings.zmq_endpoint,
                           read_labelmap(settings.zmq_labelmap), allow)
    detector.start()
    return detector
