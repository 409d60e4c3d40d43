"""The upload page at / and its static files."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    """The upload page."""
    return send_from_directory(WEB_DIR, "index.html", max_age=0)


@bp.get("/static/<path:name>")
def static(name: str):
    """The page's script and style (send_from_directory refuses paths outside WEB_DIR)."""
    return send_from_directory(WEB_DIR, name, max_age=300)
