"""/v1/models/{name}/examples: teach the box new classes from example photos (admin);
/v1/standalone/teach: the same from the box's camera, on its teach screen."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from appliance import safejson
from appliance.api.common import admin_services, uploaded
from appliance.bundle import check_name
from appliance.errors import BadRequest, Conflict
from appliance.schema import text_problem

bp = Blueprint("teach", __name__, url_prefix="/v1")
UPLOAD_HINT = ("send the photo as multipart field 'image' (curl -F image=@photo.jpg URL) "
               "or as the raw body (curl --data-binary @photo.jpg URL)")
FIELDS = {"author": 300, "license": 200}


def _teacher():
    svc = admin_services()
    return svc.teacher


@bp.post("/models/<name>/examples/<path:cls>")
def add_example(name: str, cls: str):
    """Admin: add one example photo to class `cls` of taught model `name` (both created
    when new), refit, serve."""
    teacher = _teacher()
    check_name(name)
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


@bp.post("/standalone/teach")
def teach_screen():
    """Admin: put up the teach screen for a taught model and its classes (the buttons then
    choose a class, add the camera's picture, and finish)."""
    kiosk = _kiosk()
    body = safejson.loads(request.get_data(cache=False))
    if not (isinstance(body, dict) and isinstance(body.get("model"), str)
            and isinstance(body.get("classes", []), list)
            and all(isinstance(c, str) for c in body.get("classes", []))):
        raise BadRequest('the body must be {"model": "NAME", "classes": ["CLASS", ...]} (the '
                         "classes are added to those the model has)")
    session = kiosk.teach(body["model"], body.get("classes", [])[:1000])
    return jsonify({"teaching": session.name, "classes": session.classes})


@bp.delete("/standalone/teach")
def stop_teach_screen():
    """Admin: take the teach screen down (as holding the capture button does)."""
    kiosk = _kiosk()
    teaching = kiosk.teaching.name if kiosk.teaching is not None else None
    kiosk.stop_teaching()
    return jsonify({"teaching": None, "finished": teaching})


def _kiosk():
    svc = admin_services()
    if svc.loop is None:
        raise Conflict("the box runs no screen loop: start it with --standalone (or "
                       "standalone.enabled = true) to teach from its camera")
    return svc.loop


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
