"""/v1/verify: whether a picture carries a box's Content Credentials, and whether they hold."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from appliance import provenance
from appliance.api.admission import admitted
from appliance.api.common import services, uploaded
from appliance.api.models import UPLOAD_HINT, _json_image

bp = Blueprint("verify", __name__, url_prefix="/v1")


@bp.post("/verify")
@admitted()
def verify():
    """Read the C2PA manifest of one uploaded PNG or JPEG (multipart field `image`, the raw
    body, or JSON `{"image": "<base64>"}`): signed, valid, tampered, from a box, and the
    model, authors, licence and time it names, as facts only when the key is this box's
    own or its owner's."""
    json_body = request.mimetype == "application/json"
    data = _json_image()[0] if json_body else uploaded("image", UPLOAD_HINT)
    svc = services()
    return jsonify(provenance.verify(data, provenance.known_keys(svc.settings, svc.signer)))
