"""The kiosk page for Chromium on the HDMI screen, fed live by Server-Sent Events."""

from __future__ import annotations

import json
import threading
import time

from flask import Blueprint, Response, current_app, stream_with_context

from appliance.api.admission import admitted
from appliance.api.common import services
from appliance.api.web import WEB_DIR
from appliance.errors import Busy, NotFound

bp = Blueprint("kiosk", __name__)
STREAM_S = 300.0  # then the browser reconnects by itself: no thread is held forever
KEEPALIVE_S = 15.0
STREAM_RETRY_S = 15  # a stream's slot frees when its writer finds the client gone (keep-alive)


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
@admitted(local_view=True)
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

    slots = _stream_slots()
    if not slots.acquire(blocking=False):
        raise Busy(f"this box serves at most {_stream_cap()} live event streams at once and "
                   "they are all open: close another kiosk page, or raise server.max_streams",
                   headers={"Retry-After": str(STREAM_RETRY_S)})
    response = Response(stream_with_context(stream()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    response.call_on_close(slots.release)  # waitress closes the body when the stream ends
    return response


def _stream_cap() -> int:
    """Streams open at once: server.max_streams, and never over half the worker threads
    (each stream holds one for up to STREAM_S), so requests always find threads."""
    server = services().settings.server
    return min(server.max_streams, server.threads // 2)


def _stream_slots() -> threading.BoundedSemaphore:
    # One per app (dict.setdefault is atomic): no module state, a fresh app starts empty.
    return current_app.extensions.setdefault("appliance.streams",
                                             threading.BoundedSemaphore(_stream_cap()))


@bp.get("/v1/kiosk/frame.jpg")
@admitted(local_view=True)
def frame():
    """The newest screen as JPEG."""
    screen = _screen()
    if not screen.frame:
        raise NotFound("no screen has been drawn yet: retry in a moment")
    return Response(screen.frame, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
