"""The Flask app factory: `create_app(settings, services=None)`, one blueprint per resource."""

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
from appliance.config import Settings
from appliance.services import Services


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
