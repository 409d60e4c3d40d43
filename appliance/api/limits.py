"""How large a request body each route accepts: the one table the HTTP server checks, from
the headers alone, before it reads a byte of a body.

Every route that takes a body (POST, PUT, PATCH) is listed in `BODY_KINDS` by its Flask
endpoint; a route added later adds one line here (a test fails for one that is missing).
Anything that matches no route, or a method a route does not take, gets the small cap: a
480 MB `POST /healthz` is refused at its headers, not spooled to disk and then answered 405.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException

from appliance.config import Settings
from appliance.errors import ApplianceError, Busy, TooManyRequests

IMAGE = "image"      # an upload of one picture: server.max_upload_mb
INSTALL = "install"  # a bundle archive: models.max_install_mb
SMALL = "small"      # a route that takes no body, or a few fields of JSON

SMALL_BYTES = 16 * 1024
FRAMING_BYTES = 64 * 1024  # multipart or chunked framing on top of the image itself
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

BODY_KINDS: dict[str, str] = {
    "models.infer": IMAGE,
    "models.infer_active": IMAGE,
    "v2.infer": IMAGE,
    "models.install": INSTALL,
    "models.activate": SMALL,  # takes no body; listed because it is a POST
    "deepstack.detection": IMAGE,
    "deepstack.custom": IMAGE,
    "deepstack.custom_list": SMALL,
    "deepstack.face": IMAGE,
    "deepstack.face_list": SMALL,
    "deepstack.face_recognition": IMAGE,  # answered 403, but its clients send pictures
    "deepstack.scene": IMAGE,
    "deepstack.alpr": IMAGE,
    "doods.detect": IMAGE,  # base64 in JSON: a third larger than the picture
    "teach.add_example": IMAGE,  # one example photo
    "teach.teach_screen": SMALL,  # {"model": ..., "classes": [...]}
    "verify.verify": IMAGE,  # a picture whose Content Credentials are read
}


ADMIN = "admin"  # the admin token must be in the headers before a byte of the body is read
INFER = "infer"  # the inference token (when one is set) must be in the headers
# Routes whose body only the admin may send (their views check the admin token too).
ADMIN_BODIES = frozenset({"models.install", "teach.add_example"})


@dataclass(frozen=True)
class Limit:
    """A route's body cap: `kind` (one of IMAGE, INSTALL, SMALL) and its size in bytes;
    `token`, the token checked from the headers before the body is read (ADMIN, INFER, or
    "" where the route takes none there: open routes, and protocols that carry the token in
    the body); `header`, another header that carries the inference token, and `how`, where a
    refused client should send it; `error_body`, the route's protocol's error JSON (None:
    the box's own)."""

    kind: str
    bytes: int
    token: str = ""
    header: str = ""
    how: str = ""
    error_body: Callable[[ApplianceError], dict] | None = None

    def message(self, sent: int | None) -> str:
        """What a client sending over the cap is told: the cap, and what to do."""
        size = f" ({_size(sent)} sent)" if sent else ""
        if self.kind == IMAGE:
            return (f"the request body is larger than this box accepts for an image "
                    f"({self.bytes / 1048576:g} MB){size}: send a smaller image (the limit is "
                    "the setting server.max_upload_mb)")
        if self.kind == INSTALL:
            return (f"the bundle archive is larger than this box accepts "
                    f"({self.bytes / 1048576:g} MB){size}: the limit is the setting "
                    "models.max_install_mb")
        return (f"this route takes no request body larger than {self.bytes // 1024} KB"
                f"{size}: send the request without a body (see GET /openapi.json)")


def _size(sent: int) -> str:
    """A body's size as a person reads it: KB under a megabyte (26 KB was "0.0 MB")."""
    return f"{sent / 1048576:.1f} MB" if sent >= 1048576 else f"{max(1, round(sent / 1024))} KB"


def kind_bytes(settings: Settings, kind: str) -> int:
    """The cap in bytes for `kind` under `settings`."""
    if kind == IMAGE:
        return int(settings.server.max_upload_mb * 1048576) + FRAMING_BYTES
    if kind == INSTALL:
        return (settings.models.max_install_mb << 20) + FRAMING_BYTES
    return SMALL_BYTES


class BodyLimits:
    """Looks up the cap of a request from its method and path, using the app's own URL map
    (a few microseconds: it runs in the server's I/O thread for each request's headers)."""

    def __init__(self, url_map, settings: Settings,
                 admin: Callable[[str | None], None] | None = None,
                 infer: Callable[[str | None, str], None] | None = None,
                 views: dict | None = None,
                 error_bodies: dict[str, Callable[[ApplianceError], dict]] | None = None,
                 identify: Callable[[str | None], str] | None = None,
                 on_refusal: Callable[[str, dict, int], None] | None = None) -> None:
        """`admin(authorization)` raises an ApplianceError unless the header holds the admin
        token (Auth.require_admin), `infer(authorization, how)` unless it holds the inference
        token when one is set (Auth.require_infer); given, each runs from the headers of the
        routes that need it, before their body is read. `views` (the app's view functions)
        tells which routes are admitted, and where their protocol carries the token;
        `error_bodies` maps a blueprint's name to its protocol's error JSON; `identify`
        names the token an Authorization header holds ('admin', 'infer' or 'none',
        Auth.token_id): an upload with a token is not counted in `receiving`;
        `on_refusal(endpoint, view_args, status)` counts a request the server refuses from
        its headers, as the app counts those it answers."""
        self._adapter = url_map.bind("localhost")
        self.admin, self.infer = admin, infer
        self.identify = identify or (lambda header: "none")
        self.on_refusal = on_refusal
        self.body_timeout_s = settings.server.body_timeout_s
        caps = {kind: kind_bytes(settings, kind) for kind in (IMAGE, INSTALL, SMALL)}
        self._small = Limit(SMALL, caps[SMALL])
        self._limits = {endpoint: _limit(endpoint, kind, caps[kind], admin, infer,
                                         (views or {}).get(endpoint), error_bodies or {})
                        for endpoint, kind in BODY_KINDS.items()}
        whole = int(settings.server.max_receiving_mb * 1048576) + FRAMING_BYTES
        self.receiving = Receiving(whole, max(whole // 4, caps[IMAGE]))

    def lookup(self, method: str, path: str) -> Limit:
        """The cap for `method` on `path`; the small cap when no route takes them."""
        try:
            endpoint, _ = self._adapter.match(path, method)
        except HTTPException:  # 404, 405, a redirect: nothing will read the body
            return self._small
        return self._limits.get(endpoint, self._small)

    def refused(self, method: str, path: str, status: int) -> None:
        """Count a request to `path` that the server refused from its headers."""
        if self.on_refusal is None:
            return
        try:
            endpoint, args = self._adapter.match(path, method)
        except HTTPException:
            return
        self.on_refusal(endpoint, args, status)

    def largest(self) -> int:
        """The largest cap of any route: the server's backstop for every body."""
        return max(limit.bytes for limit in (self._small, *self._limits.values()))


def _limit(endpoint: str, kind: str, size: int, admin, infer, view,
           error_bodies: dict) -> Limit:
    """`endpoint`'s Limit: its cap, the token its headers must carry, its error JSON."""
    error_body = error_bodies.get(endpoint.partition(".")[0])
    policy = getattr(view, "admission", None)
    if endpoint in ADMIN_BODIES and admin is not None:
        return Limit(kind, size, ADMIN, error_body=error_body)
    if policy is not None and infer is not None and not policy.local_view \
            and (policy.token is None or policy.header):
        return Limit(kind, size, INFER, policy.header, policy.how, error_body)
    return Limit(kind, size, error_body=error_body)


class Receiving:
    """The bytes of request bodies the server holds at once, counted as they arrive: each
    body's cap bounds one upload, this bounds how many a crowd of strangers can make the box
    buffer (in memory or in temporary files) before the app has looked at any of them, and
    how much of that one client address may hold (a quarter, or one upload if that is more),
    so that one host's uploads cannot take the whole of it from everyone else. Uploads whose
    headers carry a valid token are not counted: a stranger cannot starve the owner's
    clients. Taken from the HTTP server's I/O thread, given back from the workers when a
    request is done (or its connection is gone)."""

    def __init__(self, cap: int, per_client: int) -> None:
        self.cap = cap
        self.per_client = per_client
        self.held = 0
        self._clients: dict[str, int] = {}
        self._lock = threading.Lock()

    def room(self, size: int, client: str) -> ApplianceError | None:
        """The refusal for `size` more bytes from `client` now (TooManyRequests over the
        client's share, Busy over the whole), or None when they fit. Holds nothing."""
        with self._lock:
            return self._refusal(size, client)

    def take(self, size: int, client: str) -> ApplianceError | None:
        """Hold `size` more bytes for `client`; or hold nothing and return the refusal."""
        with self._lock:
            refusal = self._refusal(size, client)
            if refusal is None:
                self.held += size
                self._clients[client] = self._clients.get(client, 0) + size
            return refusal

    def give(self, size: int, client: str) -> None:
        """Give back `size` bytes `client` took before."""
        with self._lock:
            self.held -= size
            left = self._clients.pop(client, 0) - size
            if left > 0:
                self._clients[client] = left

    def _refusal(self, size: int, client: str) -> ApplianceError | None:
        mine = self._clients.get(client, 0)
        if mine + size > self.per_client:
            return TooManyRequests(
                f"this client is sending {(mine + size) / 1048576:.0f} MB of uploads at "
                f"once, more than one client's share ({self.per_client / 1048576:.0f} MB, "
                "a quarter of server.max_receiving_mb): finish or close the others first",
                headers={"Retry-After": "1"})
        if self.held + size > self.cap:
            return Busy(f"the box is receiving {self.held / 1048576:.0f} MB of uploads at "
                        f"once, its limit (server.max_receiving_mb = "
                        f"{self.cap / 1048576:.0f}): retry in a moment",
                        headers={"Retry-After": "1"})
        return None


def unlisted(url_map) -> list[str]:
    """Endpoints that take a body but are missing from `BODY_KINDS` (should be none)."""
    return sorted({rule.endpoint for rule in url_map.iter_rules()
                   if rule.methods & BODY_METHODS and rule.endpoint not in BODY_KINDS})
