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


@dataclass(frozen=True)
class Limit:
    """A route's body cap: `kind` (one of IMAGE, INSTALL, SMALL), its size in bytes, and
    whether the admin token is checked before the body is read (a bundle upload: nobody
    else may make the box take in 500 MB)."""

    kind: str
    bytes: int
    admin_only: bool = False

    def message(self, sent: int | None) -> str:
        """What a client sending over the cap is told: the cap, and what to do."""
        size = f" ({sent / 1048576:.1f} MB sent)" if sent else ""
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
                 admin: Callable[[str | None], None] | None = None) -> None:
        """`admin(authorization_header)` raises an ApplianceError unless the header holds
        the admin token (Auth.require_admin); given, it runs before an upload is read."""
        self._adapter = url_map.bind("localhost")
        self.admin = admin
        self._limits = {kind: Limit(kind, kind_bytes(settings, kind),
                                    admin_only=kind == INSTALL and admin is not None)
                        for kind in (IMAGE, INSTALL, SMALL)}
        whole = int(settings.server.max_receiving_mb * 1048576) + FRAMING_BYTES
        self.receiving = Receiving(whole, max(whole // 4, self._limits[IMAGE].bytes))

    def lookup(self, method: str, path: str) -> Limit:
        """The cap for `method` on `path`; the small cap when no route takes them."""
        try:
            endpoint, _ = self._adapter.match(path, method)
        except HTTPException:  # 404, 405, a redirect: nothing will read the body
            endpoint = None
        return self._limits[BODY_KINDS.get(endpoint, SMALL)]

    def largest(self) -> int:
        """The largest cap of any route: the server's backstop for every body."""
        return max(limit.bytes for limit in self._limits.values())


class Receiving:
    """The bytes of request bodies the server holds at once: each body's cap bounds one
    upload, this bounds how many a crowd can make the box buffer (in memory or in temporary
    files) before the app has looked at any of them, and how much of that one client
    address may hold (a quarter, or one upload if that is more), so that one host's slow
    uploads cannot take the whole of it from everyone else. Taken from the HTTP server's
    I/O thread as bodies arrive, given back from the workers when a request is done (or its
    connection is gone)."""

    def __init__(self, cap: int, per_client: int) -> None:
        self.cap = cap
        self.per_client = per_client
        self.held = 0
        self._clients: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, size: int, client: str) -> ApplianceError | None:
        """Hold `size` more bytes for `client`; or hold nothing and return the refusal:
        TooManyRequests over the client's share, Busy over the whole."""
        with self._lock:
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
            self.held += size
            self._clients[client] = mine + size
            return None

    def give(self, size: int, client: str) -> None:
        """Give back `size` bytes `client` took before."""
        with self._lock:
            self.held -= size
            left = self._clients.pop(client, 0) - size
            if left > 0:
                self._clients[client] = left


def unlisted(url_map) -> list[str]:
    """Endpoints that take a body but are missing from `BODY_KINDS` (should be none)."""
    return sorted({rule.endpoint for rule in url_map.iter_rules()
                   if rule.methods & BODY_METHODS and rule.endpoint not in BODY_KINDS})
