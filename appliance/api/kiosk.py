"""The kiosk page for Chromium on the HDMI screen, fed live by Server-Sent Events."""

from __future__ import annotations

import json
import threading
import time

from flask import Blueprint, Response, current_app, request, stream_with_context

from appliance.api.admission import admitted, loopback
from appliance.api.common import services
from appliance.api.web import WEB_DIR
from appliance.errors import BadRequest, Busy, NotFound
from appliance.text import one_line

bp = Blueprint("kiosk", __name__)
STREAM_S = 300.0  # then the browser reconnects by itself: no thread is held forever
KEEPALIVE_S = 15.0
STREAM_RETRY_S = 15  # a stream's slot frees when its writer finds the client gone (keep-alive)
SIDE = (120, 7680)  # a page's screen, each side in pixels: a small panel to an 8K television
MAX_ASPECT = 4  # its longer side at most 4 times its shorter (32:9 is 3.6)


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
    """`frame` events with the sequence number of each new screen; with `width` and
    `height` (the page's screen in pixels), the frames are drawn for that screen while the
    stream is open. Raises BadRequest naming a size out of range."""
    screen = _screen()
    viewport = _viewport()
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
    ticket = screen.watch(viewport, local=loopback(request.remote_addr)) if viewport else None

    def closed() -> None:  # waitress closes the body when the stream ends
        slots.release()
        if ticket is not None:
            screen.unwatch(ticket)

    response.call_on_close(closed)
    return response


def _viewport() -> tuple[int, int] | None:
    """The page's screen from `width` and `height`, or None when neither is given. Raises
    BadRequest naming the parameter and its range."""
    given = [name for name in ("width", "height") if name in request.args]
    if not given:
        return None
    if len(given) == 1:
        raise BadRequest(f"{given[0]} was given without "
                         f"{'height' if given[0] == 'width' else 'width'}: give both, or neither")
    width, height = _side("width"), _side("height")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise BadRequest(f"a screen of {width}x{height} is out of range: its longer side can be "
                         f"at most {MAX_ASPECT} times its shorter")
    return width, height


def _side(name: str) -> int:
    value = request.args[name]
    digits = value.isascii() and value.isdigit() and len(value) <= 5
    if not (digits and SIDE[0] <= int(value) <= SIDE[1]):
        raise BadRequest(f"{name} must be a whole number of pixels from {SIDE[0]} to {SIDE[1]}, "
                         f"not {one_line(value[:20])!r}")
    return int(value)


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
