"""The kiosk page for Chromium on the HDMI screen, fed live by Server-Sent Events."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, stream_with_context

from appliance.api.common import services
from appliance.api.web import WEB_DIR
from appliance.errors import NotFound

bp = Blueprint("kiosk", __name__)
STREAM_S = 300.0  # then the browser reconnects by itself: no thread is held forever
KEEPALIVE_S = 15.0


def _screen():
    screen = services().screen
    if screen is None:
        raise NotFound("the kiosk display is off: set display.kind = \"kiosk\" and start "
                       "the box with --standalone")
    return screen


@bp.get("/kiosk")
def kiosk_page():
    """The full-screen page."""
    from flask import send_from_directory

    return send_from_directory(WEB_DIR, "kiosk.html", max_age=0)


@bp.get("/v1/events")
def events():
    """`frame` events with the sequence number of each new screen."""
    screen = _screen()
    stopping = services().stopping

    def stream():
        yield "retry: 1000\n\n"
        last, started = -1, time.monotonic()
        while time.monotonic() - started < STREAM_S and not stopping.is_set():
            sequence = screen.wait(last, KEEPALIVE_S)
            if sequence > last:
                last = sequence
                yield f"event: frame\ndata: {json.dumps({'sequence': sequence})}\n\n"
            else:
                yield ": keep-alive\n\n"

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.get("/v1/kiosk/frame.jpg")
def frame():
    """The newest screen as JPEG."""
    screen = _screen()
    if not screen.frame:
        raise NotFound("no screen has been drawn yet: retry in a moment")
    return Response(screen.frame, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
