"""The one place where errors become HTTP responses: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from appliance.errors import ApplianceError, PayloadTooLarge

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    """A JSON error response with `status`."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register(app: Flask) -> None:
    """Install the handlers on `app`."""
    app.register_error_handler(ApplianceError, _appliance_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _appliance_error(exc: ApplianceError):
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def too_large() -> PayloadTooLarge:
    """werkzeug's 413 (a form or body past the app's cap) in the box's words; the routes of
    other software's protocols answer it in their own error JSON."""
    return PayloadTooLarge(f"the request body is larger than this box accepts "
                           f"({_limit_mb():g} MB): send a smaller image")


def _too_large(exc: RequestEntityTooLarge):
    # No `Connection: close` here: it is hop-by-hop, and waitress refuses an app that sets
    # it (AssertionError, a text 500). The body was read whole, so the connection is sound.
    return _appliance_error(too_large())


def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    message = exc.description or exc.name
    if exc.code == 404:
        message = "no such route: see GET /openapi.json for the API"
    if exc.code == 405:
        message = f"method not allowed here: {exc.description}"
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(exc.code or 500, code, message, headers)


def _unexpected(exc: Exception):
    log.exception("unexpected error while handling a request")
    return error_response(500, "internal", "the box hit an unexpected error; it is logged: "
                          "retry, and report it if it happens again")


def _limit_mb() -> float:
    from appliance.api.common import services

    return services().settings.server.max_upload_mb
