"""GET /openapi.json: the OpenAPI 3 description of the v1 API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from appliance import __version__

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
INFER_PARAMS = [
    {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "classify: how many labels"},
    {"name": "threshold", "in": "query", "schema": {"type": "number", "minimum": 0,
                                                    "maximum": 1},
     "description": "detect: the lowest score reported"},
    {"name": "format", "in": "query", "schema": {"type": "string",
                                                 "enum": ["png", "jpeg", "json"]},
     "description": "image-to-image: the image itself, or JSON with it in base64"},
]


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "bad request", 401: "missing or wrong token", 403: "token lacks the scope",
            404: "no such model", 413: "body or image too large", 415: "not an accepted image",
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
    params = ([NAME] if with_name else []) + INFER_PARAMS
    ok = {"description": "classify/embed: JSON; image-to-image: the image (or JSON)",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}},
                      "image/png": {"schema": {"type": "string", "format": "binary"}},
                      "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    return {"post": {"summary": summary, "parameters": params, "requestBody": IMAGE_BODY,
                     "responses": {"200": ok, **_errors(400, 401, 404, 413, 415, 429, 503)}}}


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
                                              "kiosk screen", "responses": {
                "200": {"description": "event stream", "content": {
                    "text/event-stream": {"schema": {"type": "string"}}}},
                **_errors(404)}}},
            "/v1/kiosk/frame.jpg": {"get": {"summary": "the newest kiosk screen", "responses": {
                "200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {
                    "type": "string", "format": "binary"}}}}, **_errors(404)}}},
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
                "Answer": {"type": "object", "required": ["model", "version", "timing_ms"],
                           "properties": {"model": {"type": "string"},
                                          "version": {"type": "string"},
                                          "timing_ms": {"type": "object"},
                                          "predictions": {"type": "array"},
                                          "embedding": {"type": "array"},
                                          "dim": {"type": "integer"},
                                          "detections": {"type": "array"},
                                          "image": {"type": "string"}}},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document as JSON."""
    return jsonify(spec())
