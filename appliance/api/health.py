"""Liveness, readiness and metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from appliance.api.admission import admitted
from appliance.api.common import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. Reveals nothing else."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 once the models are loaded and warm and one serves, else 503 with the reasons."""
    svc = services()
    registry = svc.registry
    body = {"status": "ready" if registry.ready else "not_ready"}
    # Which models the box has is for those who may use them (the inference token, when set).
    if svc.auth.allows_infer(request.headers.get("Authorization")):
        body["models"] = sorted(registry.runners())
        body["failed"] = {f.name: f.error for f in registry.failures().values()}
        if svc.ledger is not None and svc.ledger.problem is not None:
            body["usage"] = {"recording": False, "problem": svc.ledger.problem}
    if not registry.loaded:
        body["reason"] = "models are still loading"
    elif not registry.ready:
        body["reason"] = "no model serves: see 'failed', fix or reinstall the bundles"
    response = jsonify(body)
    if not registry.ready:
        response.status_code = 503
        response.headers["Retry-After"] = "2"
    return response


@bp.get("/metrics")
@admitted()
def metrics():
    """Prometheus text format."""
    return Response(services().metrics.render(),
                    mimetype="text/plain; version=0.0.4; charset=utf-8")
