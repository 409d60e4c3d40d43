"""The DeepStack / CodeProject.AI Server API, so Frigate's `deepstack` detector, Home
Assistant's DeepStack integrations, Blue Iris and Agent DVR use the box unchanged.

Formats as their clients read them (`../shared/design/COMPAT.md`): a multipart upload in the
field `image`, optional form fields `api_key` (the inference token) and `min_confidence`
(0-1, default 0.45); answers `{"success": true, "predictions": [...]}` with boxes in integer
pixels of the upload, best first, at most `compat.max_predictions` (Frigate's detector fails
on a 21st); errors `{"success": false, "error": "..."}` with DeepStack's status codes, which
every client handles. Each route goes through the one admission path.
"""

from __future__ import annotations

import math
import time

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from appliance import __version__, compat, pipeline
from appliance.api.admission import admitted
from appliance.api.common import services
from appliance.api.errors import too_large
from appliance.errors import ApplianceError, BadRequest, NotProvided, UnsupportedMedia

bp = Blueprint("deepstack", __name__, url_prefix="/v1")
DEFAULT_MIN_CONFIDENCE = 0.45  # DeepStack's own default (CodeProject.AI's is 0.4)
HOW = "send it as the form field api_key, or as the header 'Authorization: Bearer TOKEN'"
NO_RECOGNITION = ("face recognition needs a face-embedding model whose licence allows it and "
                  "that runs offline; this box ships none, so it cannot register or "
                  "recognise people. /v1/vision/face finds faces")
NO_PLATES = ("no licence-plate reader ships with this box: /v1/vision/alpr cannot be "
             "answered. /v1/vision/detection finds cars")


def _api_key() -> str | None:
    return request.form.get("api_key")


def _admit(metered: bool = True, model=None):
    return admitted(metered=metered, token=_api_key, how=HOW, model=model)


def _detection_model(_kwargs: dict) -> str:
    return services().settings.compat.detection_model


def _face_model(_kwargs: dict) -> str:
    return services().settings.compat.face_model


def _scene_model(_kwargs: dict) -> str:
    return services().settings.compat.scene_model


def error_body(exc: ApplianceError) -> dict:
    """DeepStack's error JSON (also what the HTTP server answers from the headers)."""
    return {"success": False, "error": exc.message, "code": exc.status, "duration": 0}


@bp.errorhandler(ApplianceError)
def _error(exc: ApplianceError):
    response = jsonify(error_body(exc))
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    return _error(too_large())


@bp.post("/vision/detection")
@_admit(model=_detection_model)
def detection():
    """Objects in the upload, as DeepStack answers them."""
    name = services().settings.compat.detection_model
    return _predict(compat.runner(services().registry, name, ("detect",),
                                  "/v1/vision/detection"))


@bp.post("/vision/custom/<name>")
@_admit()
def custom(name: str):
    """Any installed detect or classify bundle by name (Blue Iris's "custom models")."""
    return _predict(compat.runner(services().registry, name, compat.DETECTORS,
                                  "/v1/vision/custom"))


@bp.route("/vision/custom/list", methods=["GET", "POST"])
@_admit(metered=False)
def custom_list():
    """The bundles /v1/vision/custom/NAME runs."""
    return jsonify({"success": True, "models": compat.names(services().registry),
                    "duration": 0})


@bp.post("/vision/face")
@bp.post("/vision/face/")
@_admit(model=_face_model)
def face():
    """Faces in the upload (the `compat.face_model` bundle), labelled "face"."""
    name = services().settings.compat.face_model
    return _predict(compat.runner(services().registry, name, ("detect",), "/v1/vision/face"))


@bp.post("/vision/face/list")
@_admit(metered=False)
def face_list():
    """Nobody is registered: the box has no face-recognition model."""
    return jsonify({"success": True, "faces": [], "message": NO_RECOGNITION, "duration": 0})


@bp.post("/vision/face/register")
@bp.post("/vision/face/recognize")
@bp.post("/vision/face/delete")
@_admit(metered=False)
def face_recognition():
    """Registering and recognising people: not without a face-embedding model."""
    raise NotProvided(NO_RECOGNITION)


@bp.post("/vision/scene")
@_admit(model=_scene_model)
def scene():
    """The classifier's best label for the whole picture."""
    svc = services()
    runner = compat.runner(svc.registry, svc.settings.compat.scene_model, ("classify",),
                           "/v1/vision/scene")
    started = time.perf_counter()
    answer = _run(runner, _upload(), {})
    best = compat.detections(answer)[:1]
    label, confidence = (best[0].label, round(best[0].score, 4)) if best else ("", 0.0)
    return jsonify({"success": True, "label": label, "confidence": confidence,
                    **_about(runner, answer, started)})


@bp.post("/vision/alpr")
@_admit(metered=False)
def alpr():
    """Licence plates (CodeProject.AI): not without a plate reader."""
    raise NotProvided(NO_PLATES)


@bp.get("/status/updateavailable")
def update_available():
    """Blue Iris asks CodeProject.AI whether it has an update: this box never fetches one."""
    return jsonify({"success": True, "updateAvailable": False, "version": __version__,
                    "message": "this box never updates itself over the network; new "
                               "versions are installed by its owner"})


def _predict(runner) -> object:
    """The upload through `runner`, answered as DeepStack's predictions."""
    started = time.perf_counter()
    threshold = _min_confidence()
    task = runner.bundle.manifest.task
    option = compat.threshold_option(task)
    answer = _run(runner, _upload(), {option: str(threshold)} if option else {})
    limit = services().settings.compat.max_predictions
    found = [d for d in compat.detections(answer) if d.score >= threshold][:limit]
    predictions = [_prediction(d) for d in found]
    return jsonify({"success": True, "predictions": predictions, "count": len(predictions),
                    **_about(runner, answer, started)})


def _prediction(found: compat.Detection) -> dict:
    x0, y0, x1, y1 = found.box
    return {"label": found.label, "confidence": round(found.score, 4),
            "x_min": math.floor(x0), "y_min": math.floor(y0),
            "x_max": math.ceil(x1), "y_max": math.ceil(y1)}


def _run(runner, data: bytes, query: dict) -> pipeline.Answer:
    svc = services()
    try:
        return pipeline.infer(runner, data, query, svc.settings.imaging.max_pixels,
                              budget=svc.decodes)
    except UnsupportedMedia as exc:  # DeepStack's 400 ("Invalid image" to its SDK)
        raise BadRequest(exc.message) from None


def _about(runner, answer: pipeline.Answer, started: float) -> dict:
    """What every answer adds: DeepStack's and CodeProject.AI's timing fields, and who made
    the model (its attribution goes wherever its results go)."""
    return {"duration": 0, "inferenceMs": round(answer.timing_ms.get("inference", 0.0)),
            "processMs": round((time.perf_counter() - started) * 1000),
            "moduleId": "appliance", "model": answer.model, "version": answer.version,
            "attribution": runner.bundle.manifest.attribution}


def _upload() -> bytes:
    """The picture in the multipart field `image`. Raises BadRequest naming what came."""
    upload = request.files.get("image") if request.mimetype == "multipart/form-data" else None
    if upload is None:
        sent = ", ".join(repr(k) for k in request.files) or "no file"
        raise BadRequest(f"no image: send the picture as the multipart form field 'image' "
                         f"(curl -F image=@photo.jpg URL); this request sent {sent}")
    data = upload.read()
    if not data:
        raise BadRequest("the form field 'image' is empty: send the picture's bytes")
    return data


def _min_confidence() -> float:
    """The form's (or query's) `min_confidence`, 0 to 1. Raises BadRequest otherwise."""
    text = request.form.get("min_confidence", request.args.get("min_confidence"))
    if text is None or text == "":
        return DEFAULT_MIN_CONFIDENCE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise BadRequest(f"min_confidence must be a number from 0 to 1, got {text[:40]!r}")
    return value
