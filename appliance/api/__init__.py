"""The Flask app factory: `create_app(settings, services=None)`, one blueprint per resource,
and `body_limits(app, settings)`, what the HTTP server checks of its requests' headers."""

from __future__ import annotations

from flask import Flask

from appliance.api import (
    admission,
    deepstack,
    doods,
    errors,
    health,
    kiosk,
    models,
    openapi,
    teach,
    usage,
    v2,
    verify,
    web,
)
from appliance.api.limits import BodyLimits
from appliance.config import Settings
from appliance.services import Services

# Each protocol's error JSON, for the answers the HTTP server gives from the headers alone.
ERROR_BODIES = {v2.bp.name: v2.error_body, doods.bp.name: doods.error_body,
                deepstack.bp.name: deepstack.error_body}


def create_app(settings: Settings, services: Services | None = None) -> Flask:
    """Build the WSGI app. Services are created (models not loaded) when not given."""
    app = Flask("appliance", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = int(settings.server.max_upload_mb * 1024 * 1024)
    app.config["MAX_FORM_PARTS"] = 16
    app.json.sort_keys = False
    app.extensions["appliance"] = services or Services.build(settings)
    errors.register(app)
    admission.register(app)
    for blueprint in (health.bp, models.bp, openapi.bp, web.bp, kiosk.bp, v2.bp, deepstack.bp,
                      doods.bp, teach.bp, verify.bp, usage.bp):
        app.register_blueprint(blueprint)
    return app


def body_limits(app: Flask, settings: Settings) -> BodyLimits:
    """The caps and token checks the HTTP server applies to `app`'s requests from their
    headers, before a byte of a body is read."""
    auth = app.extensions["appliance"].auth
    return BodyLimits(app.url_map, settings, admin=auth.require_admin,
                      infer=auth.require_infer, views=app.view_functions,
                      error_bodies=ERROR_BODIES, identify=auth.token_id,
                      on_refusal=lambda endpoint, args, status: admission.count_refusal(
                          app, endpoint, args, status))
