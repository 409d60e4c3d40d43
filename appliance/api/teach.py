"""/v1/models/{name}/examples: teach the box new classes from example photos (admin)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from appliance.api.common import services, uploaded
from appliance.errors import BadRequest
from appliance.schema import text_problem

bp = Blueprint("teach", __name__, url_prefix="/v1")
UPLOAD_HINT = ("send the photo as multipart field 'image' (curl -F image=@photo.jpg URL) "
               "or as the raw body (curl --data-binary @photo.jpg URL)")
FIELDS = {"author": 300, "license": 200}


def _teacher():
    svc = services()
    svc.auth.require_admin(request.headers.get("Authorization"))
    return svc.teacher


@bp.post("/models/<name>/examples/<path:cls>")
def add_example(name: str, cls: str):
    """Admin: add one example photo to class `cls` of taught model `name` (both created
    when new), refit, serve."""
    teacher = _teacher()
    _check_name(name)
    data = uploaded("photo", UPLOAD_HINT)
    body = teacher.add(name, cls, data, **_fields())
    return jsonify(body), 201


@bp.get("/models/<name>/examples")
def list_examples(name: str):
    """Admin: the taught model's classes with their counts and its last report."""
    return jsonify(_teacher().describe(name))


@bp.get("/models/<name>/examples/<cls>")
def list_class(name: str, cls: str):
    """Admin: the ids of one class's examples."""
    return jsonify(_teacher().describe_class(name, cls))


@bp.get("/models/<name>/examples/<cls>/<example>")
def example_photo(name: str, cls: str, example: str):
    """Admin: one example's photo as it was stored (the upload page's thumbnails)."""
    data, mimetype = _teacher().photo(name, cls, example)
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.delete("/models/<name>/examples/<cls>")
def delete_class(name: str, cls: str):
    """Admin: remove a class and its examples, refit."""
    return jsonify(_teacher().delete_class(name, cls))


@bp.delete("/models/<name>/examples/<cls>/<example>")
def delete_example(name: str, cls: str, example: str):
    """Admin: remove one example, refit."""
    return jsonify(_teacher().delete_example(name, cls, example))


def _check_name(name: str) -> None:
    from appliance.bundle import NAME_PATTERN

    if not NAME_PATTERN.match(name):
        raise BadRequest(f"{name[:80]!r} is not a model name: 1-64 characters of a-z, 0-9, "
                         "'.', '_' or '-', starting with a letter or digit")


def _fields() -> dict[str, str | None]:
    """`author` and `license` from the query or the form: who the taught model credits."""
    found = {}
    for key, limit in FIELDS.items():
        value = request.args.get(key, request.form.get(key) if request.mimetype ==
                                 "multipart/form-data" else None)
        if value is not None:
            problem = text_problem(value, limit) or (None if value.strip() else "is empty")
            if problem:
                raise BadRequest(f"field {key} {problem}")
        found[key] = value
    return found
