"""GET /openapi.json: the OpenAPI 3 description of the v1 API."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, jsonify

from appliance import __version__, tasks

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
IMAGE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": {"type": "string",
                                                                    "format": "binary"}}}},
        "application/json": {"schema": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "description": "the image in base64"}}}},
        **{mime: {"schema": {"type": "string", "format": "binary"}}
           for mime in ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif",
                        "application/octet-stream")},
    },
}


def infer_params() -> list[dict[str, Any]]:
    """The query options of every task, one parameter per name: where two tasks share a
    name (format), the description names each task and the schemas' choices are merged."""
    params: dict[str, dict[str, Any]] = {}
    for task in tasks.all_tasks():
        for option in task.options:
            line = f"{task.name}: {option.help}"
            if option.name not in params:
                params[option.name] = {"name": option.name, "in": "query",
                                       "schema": option.schema(), "description": line}
                continue
            param = params[option.name]
            param["description"] += f"; {line}"
            enum = param["schema"].get("enum")
            if enum is not None:
                enum += [c for c in option.choices if c not in enum]
    return list(params.values())


def answer_fields() -> dict[str, Any]:
    """The JSON fields any task answers with, each described by the tasks that use it."""
    fields: dict[str, Any] = {}
    for task in tasks.all_tasks():
        for key, schema in task.answer.items():
            entry = fields.setdefault(key, dict(schema, description=""))
            entry["description"] = "; ".join(filter(None, (entry["description"], task.name)))
    return fields


def _screen_size() -> list[dict]:
    """/v1/events' width and height: the page's screen, that the frames are drawn for."""
    from appliance.api.kiosk import MAX_ASPECT, SIDE

    return [{"name": side, "in": "query", "required": False,
             "description": f"the page's screen {side} in pixels (give both, or neither; the "
                            f"longer side at most {MAX_ASPECT} times the shorter): frames are "
                            "drawn for it, within the configured display's pixel count",
             "schema": {"type": "integer", "minimum": SIDE[0], "maximum": SIDE[1]}}
            for side in ("width", "height")]


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "bad request", 401: "missing or wrong token",
            403: "token lacks the scope, or a page of another site or a name that is not the "
                 "box's (server.allowed_hosts) sent the request",
            404: "no such model", 409: "a fit of this model is running, or the name is "
                 "taken", 413: "body or image too large", 415: "not an accepted image",
            422: "the bundle cannot be served; the message says why",
            429: "too many requests from this client; see Retry-After",
            507: "the disk is full; nothing was installed",
            503: "busy or not serving; see Retry-After"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}}
            for c in codes}


def _json(description: str, schema: dict | None = None) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _infer_op(summary: str, with_name: bool) -> dict[str, Any]:
    params = ([NAME] if with_name else []) + infer_params()
    images = ", ".join(t.name for t in tasks.all_tasks() if t.images)
    ok = {"description": f"JSON; {images}: the image (or JSON with format=json)",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}},
                      "image/png": {"schema": {"type": "string", "format": "binary"}},
                      "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    return {"post": {"summary": summary, "parameters": params, "requestBody": IMAGE_BODY,
                     "responses": {"200": ok, **_errors(400, 401, 404, 413, 415, 429, 503)}}}


V2_ERROR = {"description": "a protocol error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2Error"}}}}
V2_NAME = [NAME]
V2_VERSION = [NAME, {"name": "version", "in": "path", "required": True,
                     "schema": {"type": "string"}}]


def _v2(summary: str, params: list, ok: str, post: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": params,
                                 "responses": {"200": _json(ok), "400": V2_ERROR,
                                               "404": V2_ERROR, "503": V2_ERROR}}
    if post:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/V2Request"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                    "description": "a JSON header of "
                                                    "Inference-Header-Content-Length bytes, "
                                                    "then the binary tensors"}}}}
        operation["responses"]["200"] = {"description": ok, "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
        operation["responses"].update({"401": V2_ERROR, "413": V2_ERROR, "429": V2_ERROR})
    return {"post" if post else "get": operation}


def _v2_paths() -> dict[str, Any]:
    """The Open Inference Protocol (KServe v2) routes."""
    return {
        "/v2": _v2("server metadata", [], "name, version, extensions"),
        "/v2/health/live": _v2("liveness", [], "live"),
        "/v2/health/ready": _v2("readiness", [], "ready"),
        "/v2/models/{name}": _v2("model metadata", V2_NAME, "inputs and outputs"),
        "/v2/models/{name}/versions/{version}": _v2("model metadata", V2_VERSION,
                                                    "inputs and outputs"),
        "/v2/models/{name}/ready": _v2("model readiness", V2_NAME, "ready"),
        "/v2/models/{name}/versions/{version}/ready": _v2("model readiness", V2_VERSION,
                                                          "ready"),
        "/v2/models/{name}/infer": _v2("tensors in, tensors out", V2_NAME, "outputs", True),
        "/v2/models/{name}/versions/{version}/infer": _v2("tensors in, tensors out",
                                                          V2_VERSION, "outputs", True),
    }


DEEPSTACK_ERROR = {"description": "an error, as DeepStack answers it", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/DeepStackError"}}}}
DEEPSTACK_FORM = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {
        "image": {"type": "string", "format": "binary"},
        "api_key": {"type": "string", "description": "the inference token"},
        "min_confidence": {"type": "number", "minimum": 0, "maximum": 1,
                           "description": "the lowest confidence answered (default 0.45)"}}}}}}
DOODS_KEY = {"name": "doods-auth-key", "in": "header", "required": False,
             "schema": {"type": "string"}, "description": "the inference token"}


def _deepstack(summary: str, ok: str, name: bool = False, body: bool = True,
               codes: tuple[int, ...] = (400, 404, 413, 415)) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": f"DeepStack / CodeProject.AI: {summary}", "parameters": [NAME] if name else [],
        "responses": {"200": _json(ok), **{str(c): DEEPSTACK_ERROR for c in codes}}}
    if body:
        operation["requestBody"] = DEEPSTACK_FORM
    return {"post": operation}


def _compat_paths() -> dict[str, Any]:
    """The routes other software already speaks (docs/compat.md)."""
    list_op = _deepstack("the models /v1/vision/custom/NAME runs", "success, models",
                         body=False, codes=())
    face = _deepstack("faces in the picture", "success, predictions")
    recognition = _deepstack("face recognition: answered 403 (no face-embedding model)",
                             "never", codes=(403,))
    return {
        "/v1/vision/detection": _deepstack("objects in the picture, best first",
                                           "success, predictions (label, confidence, "
                                           "x_min, y_min, x_max, y_max)"),
        "/v1/vision/custom/{name}": _deepstack("any detect or classify model by name",
                                               "success, predictions", name=True),
        "/v1/vision/custom/list": {"get": list_op["post"], "post": list_op["post"]},
        "/v1/vision/face": face, "/v1/vision/face/": face,
        "/v1/vision/face/list": _deepstack("registered faces (none)", "success, faces",
                                           body=False, codes=()),
        "/v1/vision/face/register": recognition, "/v1/vision/face/recognize": recognition,
        "/v1/vision/face/delete": recognition,
        "/v1/vision/scene": _deepstack("the classifier's best label", "success, label, "
                                       "confidence"),
        "/v1/vision/alpr": _deepstack("licence plates: answered 403 (no plate reader)",
                                      "never", codes=(403,)),
        "/v1/status/updateavailable": {"get": {
            "summary": "Blue Iris's update check: never an update",
            "responses": {"200": _json("success, updateAvailable false")}}},
        "/doods/detectors": {"get": {"summary": "DOODS: the detectors", "parameters": [DOODS_KEY],
                                     "responses": {"200": _json("detectors")}}},
        "/doods/detect": {"post": {
            "summary": "DOODS: detect in a base64 picture", "parameters": [DOODS_KEY],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["data"], "properties": {
                    "detector_name": {"type": "string"}, "id": {"type": "string"},
                    "data": {"type": "string", "description": "the picture in base64"},
                    "detect": {"type": "object", "additionalProperties": {
                        "type": "number", "minimum": 0, "maximum": 100}}}}}}},
            "responses": {"200": _json("id, detections (top, left, bottom, right as "
                                       "fractions; label; confidence in percent)"),
                          **{str(c): V2_ERROR for c in (400, 404, 413, 415)}}}},
    }


CLASS = {"name": "cls", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "the class: 1-64 characters of one line, no '/'"}
EXAMPLE = {"name": "example", "in": "path", "required": True, "schema": {"type": "string"}}


def _teach_paths() -> dict[str, Any]:
    """Teaching a taught model from example photos (admin; README: Teach the box)."""
    admin = {"security": [{"bearer": []}]}
    fields = [{"name": key, "in": "query", "required": False, "schema": {"type": "string"},
               "description": f"the new model's {key} (also a form field)"}
              for key in ("author", "license")]
    refit = "the refit: serving, classes with their counts, report (leave-one-out)"
    return {
        "/v1/models/{name}/examples": {"get": {
            "summary": "admin: a taught model's classes, counts and last report",
            "parameters": [NAME], **admin,
            "responses": {"200": _json("classes and report"), **_errors(401, 403, 404)}}},
        "/v1/models/{name}/examples/{cls}": {
            "post": {"summary": "admin: add an example photo to a class (the model and the "
                                "class are created when new), refit and serve",
                     "parameters": [NAME, CLASS, *fields], "requestBody": IMAGE_BODY, **admin,
                     "responses": {"201": _json(refit),
                                   **_errors(400, 401, 403, 409, 413, 415, 503, 507)}},
            "get": {"summary": "admin: the ids of a class's examples",
                    "parameters": [NAME, CLASS], **admin,
                    "responses": {"200": _json("examples"), **_errors(401, 403, 404)}},
            "delete": {"summary": "admin: remove a class and its examples, refit",
                       "parameters": [NAME, CLASS], **admin,
                       "responses": {"200": _json(refit), **_errors(401, 403, 404, 409)}}},
        "/v1/models/{name}/examples/{cls}/{example}": {
            "get": {"summary": "admin: one example's photo as stored (JPEG, PNG, WebP, BMP "
                               "or GIF)", "parameters": [NAME, CLASS, EXAMPLE], **admin,
                    "responses": {"200": {"description": "the photo", "content": {
                        "image/*": {"schema": {"type": "string", "format": "binary"}}}},
                        **_errors(401, 403, 404)}},
            "delete": {"summary": "admin: remove one example, refit",
                       "parameters": [NAME, CLASS, EXAMPLE], **admin,
                       "responses": {"200": _json(refit), **_errors(401, 403, 404, 409)}}},
        "/v1/standalone/teach": {
            "post": {"summary": "admin: the teach screen for a taught model and its classes "
                                "(added to those it has); the buttons choose a class, add "
                                "the camera's picture, and a hold finishes",
                     **admin, "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"type": "object", "properties": {
                             "model": {"type": "string"},
                             "classes": {"type": "array", "items": {"type": "string"}}},
                             "required": ["model"]}}}},
                     "responses": {"200": _json("the model and its classes"),
                                   **_errors(400, 401, 403, 409)}},
            "delete": {"summary": "admin: take the teach screen down", **admin,
                       "responses": {"200": _json("the model that was taught"),
                                     **_errors(401, 403, 409)}}},
    }


def spec() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "appliance", "version": __version__,
                 "description": "An offline AI box: ONNX image models over HTTP."},
        "paths": {
            "/healthz": {"get": {"summary": "liveness", "responses": {"200": _json("alive")}}},
            "/readyz": {"get": {"summary": "readiness",
                                "responses": {"200": _json("ready"),
                                              "503": _json("not ready, with reasons")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "this document",
                                      "responses": {"200": _json("OpenAPI 3")}}},
            "/": {"get": {"summary": "the upload page", "responses": {"200": {
                "description": "HTML", "content": {"text/html": {"schema": {
                    "type": "string"}}}}}}},
            "/static/{name}": {"get": {"summary": "the upload page's script and style",
                                       "parameters": [NAME],
                                       "responses": {"200": {"description": "a file"},
                                                     **_errors(404)}}},
            "/kiosk": {"get": {"summary": "full-screen page for the HDMI screen",
                               "responses": {"200": {"description": "HTML", "content": {
                                   "text/html": {"schema": {"type": "string"}}}}}}},
            "/v1/events": {"get": {"summary": "Server-Sent Events: a `frame` event per new "
                                              "kiosk screen", "parameters": _screen_size(),
                                   "responses": {
                "200": {"description": "event stream", "content": {
                    "text/event-stream": {"schema": {"type": "string"}}}},
                **_errors(400, 404)}}},
            "/v1/kiosk/frame.jpg": {"get": {"summary": "the newest kiosk screen", "responses": {
                "200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {
                    "type": "string", "format": "binary"}}}}, **_errors(404)}}},
            **_v2_paths(),
            **_compat_paths(),
            "/v1/models": {"get": {"summary": "installed models",
                                   "responses": {"200": _json("models and the active one")}}},
            "/v1/models/{name}": {
                "get": {"summary": "one model", "parameters": [NAME],
                        "responses": {"200": _json("summary and stats"), **_errors(404, 503)}},
                "put": {"summary": "admin: install or replace a bundle (.tar.gz body)",
                        "parameters": [NAME], "security": [{"bearer": []}],
                        "requestBody": {"required": True, "content": {
                            "application/octet-stream": {"schema": {
                                "type": "string", "format": "binary",
                                "description": "the bundle as a .tar.gz"}}}},
                        "responses": {"200": _json("replaced"), "201": _json("installed"),
                                      **_errors(400, 401, 403, 413, 422, 507)}},
                "delete": {"summary": "admin: remove a bundle", "parameters": [NAME],
                           "security": [{"bearer": []}],
                           "responses": {"200": _json("removed"), **_errors(401, 403, 404)}}},
            "/v1/models/{name}/infer": _infer_op("run a model on one image", True),
            "/v1/infer": _infer_op("run the active model on one image", False),
            **_teach_paths(),
            "/v1/verify": {"post": {
                "summary": "whether a PNG or JPEG carries a box's Content Credentials (C2PA), "
                           "whether its signature holds and whether the picture changed since",
                "requestBody": IMAGE_BODY,
                "responses": {"200": _json("signed, valid, tampered, signed_by, from_box, "
                                           "trusted, the model, attribution, box, made (under "
                                           "claim when the key is not this box's or its "
                                           "owner's) and a message"),
                              **_errors(400, 413, 415, 503)}}},
            "/v1/usage": {"get": {
                "summary": "admin: the usage ledger, requests per model, UTC day (older days: "
                           "their month) and token (admin, infer, none), as JSON or CSV",
                "parameters": [
                    {"name": "model", "in": "query", "schema": {"type": "string"},
                     "description": "only this model"},
                    {"name": "month", "in": "query",
                     "schema": {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
                     "description": "only this month, YYYY-MM"},
                    {"name": "format", "in": "query",
                     "schema": {"type": "string", "enum": ["json", "csv"]},
                     "description": "json (default) or csv; Accept: text/csv also gives CSV"}],
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "recording, file, problem, dropped, "
                                                     "totals by model and the rows",
                                      "content": {"application/json": {"schema": {
                                          "type": "object"}},
                                                  "text/csv": {"schema": {
                                                      "type": "string"}}}},
                              **_errors(400, 401, 403, 503)}}},
            "/v1/usage/{name}/statement": {"get": {
                "summary": "admin: a plain-text statement of how often a model answered on "
                           "this box in a month, to send to its authors",
                "parameters": [NAME, {"name": "month", "in": "query",
                                      "schema": {"type": "string",
                                                 "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
                                      "description": "YYYY-MM; default this UTC month"}],
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "the statement",
                                      "content": {"text/plain": {"schema": {
                                          "type": "string"}}}},
                              **_errors(400, 401, 403, 503)}}},
            "/v1/models/{name}/activate": {"post": {
                "summary": "admin: make a model the active one", "parameters": [NAME],
                "security": [{"bearer": []}],
                "responses": {"200": _json("the new active model"),
                              **_errors(401, 403, 404, 503)}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["code", "message"],
                              "properties": {"code": {"type": "string"},
                                             "message": {"type": "string"}}}}},
                "V2Error": {"type": "object", "required": ["error"],
                            "properties": {"error": {"type": "string"}}},
                "DeepStackError": {"type": "object", "required": ["success", "error"],
                                   "properties": {"success": {"type": "boolean"},
                                                  "error": {"type": "string"},
                                                  "code": {"type": "integer"},
                                                  "duration": {"type": "number"}}},
                "V2Request": {"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"}, "parameters": {"type": "object"},
                    "inputs": {"type": "array", "items": {"type": "object"}},
                    "outputs": {"type": "array", "items": {"type": "object"}}}},
                "Answer": {"type": "object", "required": ["model", "version", "timing_ms"],
                           "properties": {"model": {"type": "string"},
                                          "version": {"type": "string"},
                                          "timing_ms": {"type": "object"},
                                          **answer_fields()}},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document as JSON."""
    document = spec()
    add_admission(document, current_app)
    return jsonify(document)


ADMISSION_ERRORS = (401, 403, 429, 503)


def add_admission(document: dict[str, Any], app) -> None:
    """Mark every admitted route (appliance/api/admission.py) in `document`: the inference
    token (when the box has one), and the answers of the admission path."""
    for rule in app.url_map.iter_rules():
        if getattr(app.view_functions[rule.endpoint], "admission", None) is None:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = document["paths"][path][method.lower()]
            operation["security"] = [{}, {"bearer": []}]  # the token only when one is set
            error = (V2_ERROR if path.startswith(("/v2", "/doods")) else
                     DEEPSTACK_ERROR if path.startswith("/v1/vision") else None)
            for code, response in _errors(*ADMISSION_ERRORS).items():
                operation["responses"].setdefault(code, error or response)
