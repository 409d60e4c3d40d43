"""The Open Inference Protocol (KServe v2 / Triton HTTP/REST), so `tritonclient.http` and
KServe clients talk to the box unchanged: tensors in, tensors out, through the same engine,
queue and batching as v1. JSON tensors and the binary tensor data extension
(`Inference-Header-Content-Length`). Errors are `{"error": "..."}` with 400 (protocol)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from appliance import __version__, safejson
from appliance.api.admission import admitted
from appliance.api.common import services
from appliance.api.errors import too_large
from appliance.errors import ApplianceError, BadRequest

bp = Blueprint("v2", __name__, url_prefix="/v2")
DATATYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "UINT8": np.uint8,
             "INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}
ORT_TYPES = {"tensor(float)": "FP32", "tensor(float16)": "FP16", "tensor(double)": "FP64",
             "tensor(uint8)": "UINT8", "tensor(int8)": "INT8", "tensor(int32)": "INT32",
             "tensor(int64)": "INT64", "tensor(bool)": "BOOL"}
HEADER = "Inference-Header-Content-Length"
MAX_ELEMENTS = 1 << 27  # 512 MB of FP32: far past any image model's input and body cap


def _error(message: str, status: int = 400, headers: dict | None = None):
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def error_body(exc: ApplianceError) -> dict:
    """The protocol's error JSON (also what the HTTP server answers from the headers)."""
    return {"error": exc.message}


@bp.errorhandler(ApplianceError)
def _protocol_error(exc: ApplianceError):
    status = exc.status if exc.status in (401, 403, 404, 413, 429, 503, 504) else 400
    return _error(exc.message, status, exc.headers)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    return _protocol_error(too_large())


@bp.get("")
def server_metadata():
    return jsonify({"name": "appliance", "version": __version__,
                    "extensions": ["binary_tensor_data"]})


@bp.get("/health/live")
def live():
    return jsonify({"live": True})


@bp.get("/health/ready")
def ready():
    ok = services().registry.ready
    return jsonify({"ready": ok}), (200 if ok else 503)


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
@admitted()
def model_metadata(name: str, version: str = ""):
    runner = services().registry.get(name)
    session = runner.session
    return jsonify({"name": name, "versions": [runner.bundle.manifest.version],
                    "platform": "onnxruntime_onnx",
                    "inputs": [_describe(t) for t in session.get_inputs()],
                    "outputs": [_describe(t) for t in session.get_outputs()]})


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
@admitted()
def model_ready(name: str, version: str = ""):
    services().registry.get(name)
    return jsonify({"name": name, "ready": True})


def _describe(tensor) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else -1 for d in tensor.shape]
    return {"name": tensor.name, "datatype": ORT_TYPES.get(tensor.type, tensor.type),
            "shape": shape}


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
@admitted(metered=True)
def infer(name: str, version: str = ""):
    runner = services().registry.get(name)
    with runner.admit():
        header, binary = _split_body()
        _check_header(header)
        tensor = _input_tensor(runner, header, binary)
        outputs = runner.run(tensor)
    names = [o.name for o in runner.session.get_outputs()]
    return _reply(name, runner.bundle.manifest.version, header, names, outputs)


def _split_body() -> tuple[dict[str, Any], bytes]:
    body = request.get_data(cache=False)
    size = request.headers.get(HEADER)
    if size is None:
        return _object(safejson.loads(body)), b""
    try:
        length = int(size)
    except ValueError:
        raise BadRequest(f"{HEADER} must be a number, got {size!r}") from None
    if not 0 < length <= len(body):
        raise BadRequest(f"{HEADER} is {length} but the body has {len(body)} bytes")
    return _object(safejson.loads(body[:length])), body[length:]


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("the inference request must be a JSON object")
    return value


def _check_header(header: dict[str, Any]) -> None:
    """Every `parameters` object and `outputs` entry checked before any work, so a request
    of the wrong shape is a 400 before the model runs, never a 500 after it."""
    _parameters(header, "the request")
    outputs = header.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
    for item in outputs or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest("each entry of 'outputs' must be an object with a 'name'")
        _parameters(item, f"output {item['name']!r}")
    for item in header.get("inputs") or []:
        if isinstance(item, dict):
            _parameters(item, f"input {item.get('name')!r}")


def _parameters(holder: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"'parameters' of {what} must be an object, got "
                         f"{type(parameters).__name__}")
    return parameters


def _input_tensor(runner, header: dict[str, Any], binary: bytes) -> np.ndarray:
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest("'inputs' must hold exactly one tensor: this model has one input")
    spec = inputs[0]
    expected = runner.session.get_inputs()[0]
    if spec.get("name") != expected.name:
        raise BadRequest(f"unknown input {spec.get('name')!r}: the model's input is "
                         f"{expected.name!r}")
    datatype = ORT_TYPES.get(expected.type)
    if spec.get("datatype") != datatype:
        raise BadRequest(f"input {expected.name} is {datatype}, not {spec.get('datatype')!r}")
    shape = _shape(spec.get("shape"), expected.shape)
    array = _values(spec, shape, DATATYPES[datatype], binary)
    return np.ascontiguousarray(array.reshape(shape))


def _shape(shape: Any, model_shape: list) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                              and d > 0 for d in shape):
        raise BadRequest(f"'shape' must be a list of positive integers, got {shape!r}")
    # Python's integers: numpy's int64 product wraps around for a shape like [2**54 + 1, ...]
    if math.prod(shape) > MAX_ELEMENTS:
        raise BadRequest(f"shape {shape} holds {math.prod(shape)} values; one request "
                         f"carries at most {MAX_ELEMENTS}")
    fixed = [d if isinstance(d, int) else None for d in model_shape]
    if len(shape) != len(fixed) or any(f is not None and f != d for f, d in zip(fixed, shape,
                                                                                strict=True)):
        raise BadRequest(f"shape {shape} does not fit the model's input "
                         f"{[d if d is not None else -1 for d in fixed]}")
    return shape


def _values(spec: dict, shape: list[int], dtype, binary: bytes) -> np.ndarray:
    count = math.prod(shape)
    parameters = _parameters(spec, f"input {spec.get('name')!r}")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if not isinstance(size, int) or size != len(binary):
            raise BadRequest(f"binary_data_size is {size!r} but {len(binary)} bytes follow "
                             "the header")
        if size != count * np.dtype(dtype).itemsize:
            raise BadRequest(f"{size} bytes do not hold a {shape} tensor of "
                             f"{np.dtype(dtype).name}")
        return np.frombuffer(binary, dtype=dtype)
    data = spec.get("data")
    if not isinstance(data, list):
        raise BadRequest("the input needs 'data' (a flat list) or binary data")
    flat = np.asarray(_flatten(data))
    if flat.size != count:
        raise BadRequest(f"{flat.size} values do not fill shape {shape} ({count} values)")
    try:
        return flat.astype(dtype, casting="same_kind" if flat.dtype.kind == "f" else "unsafe")
    except TypeError:
        raise BadRequest(f"the data does not hold {np.dtype(dtype).name} values") from None


def _flatten(data: list) -> list:
    out: list = []
    for item in data:
        if isinstance(item, list):
            out.extend(_flatten(item))
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise BadRequest(f"tensor data must be numbers, got {item!r}")
        else:
            out.append(item)
    return out


def _reply(name: str, version: str, header: dict, names: list[str], outputs) -> Response:
    wanted = header.get("outputs")
    everything_binary = bool((header.get("parameters") or {}).get("binary_data_output"))
    chosen = _requested(wanted, names, everything_binary)
    body: dict[str, Any] = {"model_name": name, "model_version": version, "outputs": []}
    if "id" in header:
        body["id"] = header["id"]
    blobs = []
    for out_name, as_binary in chosen:
        array = np.asarray(outputs[names.index(out_name)])
        entry = {"name": out_name, "datatype": _datatype(array), "shape": list(array.shape)}
        if as_binary:
            blob = np.ascontiguousarray(array).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.reshape(-1).tolist()
        body["outputs"].append(entry)
    text = json.dumps(body).encode()
    if not blobs:
        return Response(text, mimetype="application/json")
    response = Response(text + b"".join(blobs), mimetype="application/octet-stream")
    response.headers[HEADER] = str(len(text))
    return response


def _requested(wanted: Any, names: list[str], everything_binary: bool) -> list[tuple[str, bool]]:
    if wanted is None:
        return [(n, everything_binary) for n in names]
    if not isinstance(wanted, list):
        raise BadRequest("'outputs' must be a list")
    chosen = []
    for item in wanted:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in names:
            raise BadRequest(f"unknown output {name!r}: the model's outputs are "
                             f"{', '.join(names)}")
        binary = bool((item.get("parameters") or {}).get("binary_data", everything_binary))
        chosen.append((name, binary))
    return chosen


def _datatype(array: np.ndarray) -> str:
    for name, dtype in DATATYPES.items():
        if array.dtype == np.dtype(dtype):
            return name
    raise BadRequest(f"output type {array.dtype} has no protocol datatype")
