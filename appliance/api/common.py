"""Helpers the blueprints share."""

from __future__ import annotations

import io

from flask import current_app, request

from appliance import multipart
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
        data = _form_image(request.get_data(cache=False))
        if data is None:
            raise BadRequest(f"no multipart field 'image' in the form: {hint}")
    else:
        data = request.get_data(cache=False)
    if not data:
        raise BadRequest(f"no {noun} in the request: {hint}")
    return data


def _form_image(body: bytes) -> bytes | None:
    """The file in form field `image` of the multipart `body`: read directly when it is the
    form's one part (`curl -F image=@photo.jpg`), else by werkzeug's parser with the app's
    limits on forms, whose fields are then the request's `form` (a teaching upload's author
    and license). None when the form has no such file. Raises RequestEntityTooLarge for a
    form over the part or field limits."""
    data = multipart.single_file(body, request.mimetype_params.get("boundary", ""), "image")
    if data is not None:
        return data
    _, request.form, request.files = request.make_form_data_parser().parse(
        io.BytesIO(body), request.mimetype, len(body), request.mimetype_params)
    upload = request.files.get("image")
    return None if upload is None else upload.read()
