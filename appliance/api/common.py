"""Helpers the blueprints share."""

from __future__ import annotations

import io
from typing import BinaryIO

from flask import current_app, request
from werkzeug.datastructures import ImmutableMultiDict

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
    what is missing (`noun`: image, photo) with `hint`, how to send it, and
    RequestEntityTooLarge for a body over the route's cap."""
    stream, length = _body()
    if request.mimetype == "multipart/form-data":
        data = _form_image(stream, length)
        if data is None:
            raise BadRequest(f"no multipart field 'image' in the form: {hint}")
    else:
        data = stream.read(length)
    stream.seek(length)  # read, as werkzeug's stream would have been: nothing left after
    if not data:
        raise BadRequest(f"no {noun} in the request: {hint}")
    return data


def _body() -> tuple[BinaryIO, int]:
    """The request body as a seekable stream at its start, and its length: the web server's
    own buffer (waitress's file or BytesIO) when it holds the whole body and nothing of it
    was read, to be read in one piece (werkzeug's stream reads 64 KB at a time and copies
    the body twice more), else what werkzeug's stream reads. Raises RequestEntityTooLarge
    for a body over the route's cap (werkzeug's check)."""
    request.stream  # noqa: B018 - werkzeug checks the declared length against the cap here
    raw, length = request.environ.get("wsgi.input"), request.content_length
    try:  # all of it there (waitress hands over only whole bodies), and nothing read yet
        if raw is not None and length is not None and raw.seekable() and raw.tell() == 0:
            whole = raw.seek(0, io.SEEK_END) == length
            raw.seek(0)
            if whole:
                return raw, length
    except (AttributeError, OSError, ValueError):
        pass
    data = request.get_data(cache=False)
    return io.BytesIO(data), len(data)


def _form_image(stream: BinaryIO, length: int) -> bytes | None:
    """The file in form field `image` of the multipart body in `stream`: read directly when
    it is the form's one part (`curl -F image=@photo.jpg`), else by werkzeug's parser with
    the app's limits on forms, whose fields are then the request's `form` (a teaching
    upload's author and license). None when the form has no such file. Raises
    RequestEntityTooLarge for a form over the part or field limits."""
    data = multipart.single_file(stream, length, request.mimetype_params.get("boundary", ""),
                                 "image")
    if data is not None:  # the form's one part: it has no other fields
        request.form, request.files = ImmutableMultiDict(), ImmutableMultiDict()
        return data
    stream.seek(0)
    _, request.form, request.files = request.make_form_data_parser().parse(
        stream, request.mimetype, length, request.mimetype_params)
    upload = request.files.get("image")
    return None if upload is None else upload.read()
