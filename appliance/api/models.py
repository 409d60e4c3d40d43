"""/v1/models: list, describe, infer, activate."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time

from flask import Blueprint, Response, jsonify, request

from appliance import bundle as bundles
from appliance import imaging, pipeline, provenance, safejson
from appliance import install as installer
from appliance.api.admission import admitted
from appliance.api.common import admin_services, services, uploaded
from appliance.api.headers import text_headers
from appliance.errors import BadRequest
from appliance.pipeline import Answer
from appliance.services import Services

bp = Blueprint("models", __name__, url_prefix="/v1")
UPLOAD_HINT = ("send the image as multipart field 'image' (curl -F image=@photo.jpg URL) "
               "or as the raw body (curl --data-binary @photo.jpg -H 'Content-Type: "
               "image/jpeg' URL)")


@bp.get("/models")
@admitted()
def list_models():
    """Every installed bundle with its state."""
    registry = services().registry
    return jsonify({"models": registry.describe(), "active": registry.active})


@bp.get("/models/<name>")
@admitted()
def get_model(name: str):
    """One bundle's manifest summary and live stats."""
    svc = services()
    runner = svc.registry.get(name)
    bundle = runner.bundle
    body = dict(bundle.summary(), active=(name == svc.registry.active), status="ready")
    body["input"] = {"name": bundle.manifest.input.name, "layout": bundle.manifest.input.layout,
                     "size": list(bundle.manifest.input.size),
                     "resize": bundle.manifest.input.resize}
    body["stats"] = {"requests": svc.metrics.requests(name, 200),
                     "queue_depth": runner.queue_depth, "overruns": runner.overruns}
    return jsonify(body)


@bp.post("/models/<name>/infer")
@admitted(metered=True)
def infer(name: str):
    """Run model `name` on one image."""
    return _infer(services().registry.get(name))


@bp.post("/infer")
@admitted(metered=True)
def infer_active():
    """Run the active model on one image."""
    return _infer(services().registry.get_active())


@bp.put("/models/<name>")
def install(name: str):
    """Admin: install or replace bundle `name` from a .tar.gz body."""
    svc = admin_services()
    bundles.check_name(name, "bundle name")
    cap = svc.settings.models.max_install_mb << 20
    request.max_content_length = cap
    unpack = installer.archive(lambda path: installer.receive(request.stream, path, cap), cap)
    runner, replaced = installer.install(svc.registry, unpack, name, svc.settings.models)
    body = dict(runner.bundle.summary(), status="ready", replaced=replaced)
    return jsonify(body), (200 if replaced else 201)


@bp.delete("/models/<name>")
def remove(name: str):
    """Admin: stop serving bundle `name` and delete it."""
    svc = admin_services()
    svc.registry.remove(name)
    return jsonify({"removed": name})


@bp.post("/models/<name>/activate")
def activate(name: str):
    """Admin: make `name` the active model."""
    svc = admin_services()
    warning = svc.registry.activate(name)
    body = {"active": name}
    if warning:
        body["warning"] = warning
    return jsonify(body)


def _infer(runner) -> Response:
    """One image through `runner`'s model, answered as its task answers; the image is then
    the push camera's newest frame."""
    svc = services()
    data, options = _image_and_options()
    answer = pipeline.infer(runner, data, options, svc.settings.imaging.max_pixels,
                            budget=svc.decodes)
    feed_push_camera(svc, data)
    claim = provenance.Claim(answer.model, answer.version, runner.bundle.manifest.task,
                             runner.bundle.manifest.attribution,
                             hashlib.sha256(data).hexdigest(), imaging.sniff(data))
    return _respond(answer, claim)


def feed_push_camera(svc: Services, data: bytes) -> None:
    """Make an upload the push camera's newest frame, when it is the camera (camera.kind
    push, with standalone.enabled): a phone or a script is then the standalone loop's camera.

    Called by the /v1 inference routes once the model has answered, so only bytes that
    decoded as a picture get here (pipeline.infer raises for any other). The request decoded
    them at its model's size; the camera keeps the bytes and decodes them at the screen's
    size, in the loop's thread and within the same decode budget. Raises nothing.
    """
    if svc.push_camera is not None:
        svc.push_camera.push(data)


def _image_and_options() -> tuple[bytes, dict[str, str]]:
    """The image and the options: the query's, and a JSON body's other fields. Raises
    BadRequest for an option given twice (in the query, or in both places)."""
    options = {}
    for key, values in request.args.lists():
        if len(values) > 1:
            raise BadRequest(f"option {key} is given {len(values)} times: give it once")
        options[key] = values[0]
    if request.mimetype != "application/json":
        return uploaded("image", UPLOAD_HINT), options
    data, extra = _json_image()
    for key, value in extra.items():
        if key in options:
            raise BadRequest(f"option {key} is given in the query and in the JSON body: "
                             "give it once")
        options[key] = value if isinstance(value, str) else json.dumps(value)
    return data, options


def _json_image() -> tuple[bytes, dict]:
    """`{"image": "<base64>", OPTION: VALUE...}`, for clients that speak JSON (Home
    Assistant, browsers): the image and the other fields, which are options."""
    body = safejson.loads(request.get_data(cache=False))
    if not isinstance(body, dict) or not isinstance(body.get("image"), str):
        raise BadRequest('a JSON body must be {"image": "<the image in base64>"} (other '
                         'fields are options, e.g. "threshold": 0.3)')
    try:
        data = base64.b64decode(body.pop("image"), validate=True)
    except ValueError:
        raise BadRequest("the JSON field 'image' is not valid base64") from None
    if not data:
        raise BadRequest(f"no image in the request: {UPLOAD_HINT}")
    return data, body


def _respond(answer: Answer, claim: provenance.Claim) -> Response:
    """The task's answer: JSON (with attribution and a stable result_id), or the picture,
    signed with the box's key when provenance is on."""
    attribution = claim.attribution
    image = answer.result.image
    if image is None:
        body = answer.body()
        body["result_id"] = provenance.json_result_id(answer.model, answer.version,
                                                      claim.input_sha256, answer.result.body)
        body["attribution"] = attribution
        return jsonify(body)
    fmt = answer.options.get("format", "png")
    data, mime, result_id = _signed(image, "png" if fmt == "json" else fmt, claim,
                                    answer.timing_ms)
    if fmt == "json":
        body = answer.body()
        body.update(result_id=result_id, attribution=attribution, mime=mime,
                    image=base64.b64encode(data).decode("ascii"))
        return jsonify(body)
    response = Response(data, mimetype=mime)
    # Manifest text may be anything (an em dash, Chinese, a newline, 200 KB): never raw.
    response.headers.update(text_headers("X-Model", f"{answer.model} {answer.version}"))
    response.headers.update(text_headers("X-Model-License", attribution.get("license", "")))
    response.headers.update(text_headers("X-Model-Author", attribution.get("author", "")))
    response.headers["X-Result-Id"] = result_id
    response.headers["Server-Timing"] = ", ".join(
        f"{k};dur={v}" for k, v in answer.timing_ms.items())
    return response


def _signed(image, fmt: str, claim: provenance.Claim,
            timing_ms: dict[str, float]) -> tuple[bytes, str, str]:
    """The picture encoded as `fmt`, the box's signature on it when provenance is on
    (its time added to `timing_ms` as `sign`), and its result id."""
    data, mime = imaging.encode(image, fmt, claim.attribution)
    result_id = provenance.result_id(claim.model, claim.version, claim.input_sha256, data)
    signer = services().signer
    if signer is not None:
        started = time.perf_counter()
        data = provenance.stamp(signer, data, mime, dataclasses.replace(claim,
                                                                        result_id=result_id))
        timing_ms["sign"] = round((time.perf_counter() - started) * 1000, 3)
    return data, mime, result_id
