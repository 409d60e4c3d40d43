"""Helpers the blueprints share."""

from __future__ import annotations

from flask import current_app

from appliance.services import Services


def services() -> Services:
    """The Services object of the running app."""
    return current_app.extensions["appliance"]
