"""Home Assistant's DOODS detector API under `/doods`, so Home Assistant's core `doods`
integration (through `pydoods`) uses the box with its URL set to http://BOX:8080/doods.

`GET /doods/detectors` lists the `default` detector (the `compat.detection_model` bundle)
and every installed detect bundle by name; `POST /doods/detect` takes
`{"detector_name", "data": base64 image, "detect": {label: minimum percent, "*": ...}}` and
answers `{"id", "detections": [{"top", "left", "bottom", "right", "label", "confidence"}]}`
with edges as fractions of the image and confidences in percent. The `doods-auth-key`
header carries the inference token. Errors are `{"error": "..."}` with their status.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from appliance import compat, pipeline, safejson
from appliance.api.admission import admitted
from appliance.api.common import services
from appliance.api.errors import too_large
from appliance.errors import ApplianceError, BadRequest

bp = Blueprint("doods", __name__, url_prefix="/doods")
DEFAULT = "default"  # pydoods' and Home Assistant's default detector name
AUTH_HEADER = "doods-auth-key"
HOW = f"send it in the header {AUTH_HEADER}, or as 'Authorization: Bearer TOKEN'"
ANY = "*"
MAX_NAME = 64  # a bundle name's longest


def _model(_kwargs: dict) -> str | None:
    # Refused before its body named a detector: counted under the default one.
    return g.get("doods_model", services().settings.compat.detection_model)


def error_body(exc: ApplianceError) -> dict:
    """DOODS's error JSON (also what the HTTP server answers from the headers)."""
    return {"error": exc.message}


@bp.errorhandler(ApplianceError)
def _error(exc: ApplianceError):
    response = jsonify(error_body(exc))
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    return _error(too_large())


@bp.get("/detectors")
@admitted(header=AUTH_HEADER, how=HOW)
def detectors():
    """The detectors Home Assistant may name: `default` and each detect bundle."""
    registry, default = services().registry, services().settings.compat.detection_model
    names = compat.names(registry, ("detect",))
    listed = ([(DEFAULT, default)] if default in names else []) + [(n, n) for n in names]
    return jsonify({"detectors": [_describe(shown, registry.get(name))
                                  for shown, name in listed]})


def _describe(shown: str, runner) -> dict[str, Any]:
    height, width = runner.bundle.manifest.input.size
    return {"name": shown, "type": "onnx", "model": runner.bundle.name,
            "labels": compat.labels(runner), "width": width, "height": height}


@bp.post("/detect")
@admitted(metered=True, header=AUTH_HEADER, how=HOW, model=_model)
def detect():
    """The picture in `data` through the named detector, filtered by `detect`."""
    body = safejson.loads(request.get_data(cache=False))
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object: {"detector_name": "default", '
                         '"data": "<base64 image>", "detect": {"person": 50}}')
    svc = services()
    name = _detector(body.get("detector_name", DEFAULT))
    g.doods_model = name
    runner = compat.runner(svc.registry, name, ("detect",), "/doods/detect")
    wanted = _minimums(body.get("detect"))
    lowest = min(wanted.values()) / 100 if wanted else None
    query = {"threshold": str(lowest)} if lowest is not None else {}
    answer = pipeline.infer(runner, _image(body.get("data")), query,
                            svc.settings.imaging.max_pixels, budget=svc.decodes)
    width, height = answer.size
    found = [d for d in compat.detections(answer) if _wanted(d, wanted)]
    return jsonify({"id": body.get("id", "") if isinstance(body.get("id"), str) else "",
                    "detections": [_detection(d, width, height) for d in found],
                    "model": answer.model,
                    "attribution": runner.bundle.manifest.attribution})


def _detector(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise BadRequest(f"detector_name must be a detector's name (GET /doods/detectors), "
                         f"got {str(name)[:40]!r}")
    if len(name) > MAX_NAME:
        raise BadRequest(f"detector_name is {len(name)} characters: no detector's name is "
                         f"longer than {MAX_NAME} (GET /doods/detectors)")
    return services().settings.compat.detection_model if name == DEFAULT else name


def _minimums(detect: Any) -> dict[str, float]:
    """`detect`'s minimum confidence per label, in percent; empty: every label at the
    model's own threshold. Raises BadRequest for anything but labels to numbers 0-100."""
    if detect is None:
        return {}
    if not isinstance(detect, dict):
        raise BadRequest('detect must be an object of labels to minimum confidences in '
                         'percent, e.g. {"person": 50, "*": 70}')
    minimums = {}
    for label, value in detect.items():
        number = value if isinstance(value, int | float) and not isinstance(value, bool) \
            else math.nan
        if not 0 <= number <= 100:  # NaN fails this too
            raise BadRequest(f"detect[{label[:40]!r}] must be a confidence in percent, 0 to "
                             f"100, got {str(value)[:40]!r}")
        minimums[label] = float(number)
    return minimums


def _wanted(found: compat.Detection, wanted: dict[str, float]) -> bool:
    if not wanted:
        return True
    minimum = wanted.get(found.label, wanted.get(ANY))
    return minimum is not None and found.score * 100 >= minimum


def _image(data: Any) -> bytes:
    if not isinstance(data, str) or not data:
        raise BadRequest("data must hold the picture in base64 (a JPEG or PNG file's bytes)")
    try:  # line breaks allowed, as Go's decoder (DOODS's own) and MIME encoders write them
        return base64.b64decode(data.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("data is not valid base64: send the picture's bytes "
                         "base64-encoded") from None


def _detection(found: compat.Detection, width: int, height: int) -> dict[str, Any]:
    x0, y0, x1, y1 = found.box
    return {"top": round(y0 / height, 5), "left": round(x0 / width, 5),
            "bottom": round(y1 / height, 5), "right": round(x1 / width, 5),
            "label": found.label, "confidence": round(found.score * 100, 2)}
