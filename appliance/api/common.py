"""Helpers the blueprints share."""

from __future__ import annotations

from flask import current_app, request

from appliance.errors import BadRequest
from appliance.services import Services


def services() -> Services:
    """The Services object of the running app."""
    return current_app.extensions["appliance"]


def admin_services() -> Services:
    """The Services object, once the request carries the admin token. Raises Unauthorized
    or Forbidden (Auth.require_admin)."""
    svc = services()
    svc.auth.require_admin(request.headers.get("Authorization"))
    return svc


def uploaded(noun: str, hint: str) -> bytes:
    """The picture in multipart field `image`, or the raw body. Raises BadRequest naming
    what is missing (`noun`: image, photo) with `hint`, how to send it."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise BadRequest(f"no multipart field 'image' in the form: {hint}")
        data = upload.read()
    else:
        data = request.get_data(cache=False)
    if not data:
        raise BadRequest(f"no {noun} in the request: {hint}")
    return data
