"""Bearer tokens: the admin token (always required on admin routes) and an optional
inference token. Tokens are kept as sha256 digests in memory, compared in constant time,
never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from pathlib import Path

from appliance.errors import ConfigError, Forbidden, Unauthorized
from appliance.storage import read_text, write_text_atomic

log = logging.getLogger(__name__)
ADMIN_TOKEN_FILE = "admin-token"
MIN_TOKEN_CHARS = 16  # a guess a second for a year still misses 16 random characters
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="appliance"'}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Auth:
    """Checks `Authorization: Bearer ...` headers against the two tokens."""

    def __init__(self, admin_token: str, infer_token: str = "") -> None:
        self._admin = _digest(admin_token)
        self._infer = _digest(infer_token) if infer_token else None

    @property
    def infer_required(self) -> bool:
        return self._infer is not None

    def require_admin(self, header: str | None) -> None:
        """Raise Unauthorized (no or wrong token) or Forbidden (inference token only)."""
        token = _bearer(header)
        if token is None:
            raise Unauthorized("this route needs the admin token: send "
                               "'Authorization: Bearer TOKEN' (see the admin-token file in "
                               "the state directory)", headers=CHALLENGE)
        if hmac.compare_digest(_digest(token), self._admin):
            return
        if self._infer is not None and hmac.compare_digest(_digest(token), self._infer):
            raise Forbidden("the inference token cannot change the box: use the admin token")
        raise Unauthorized("wrong token for this route: use the admin token", headers=CHALLENGE)

    def require_infer(self, header: str | None,
                      how: str = "send 'Authorization: Bearer TOKEN'") -> None:
        """When an inference token is set, raise Unauthorized unless it (or admin) is sent;
        `how` says where the client should send it."""
        if not self.allows_infer(header):
            raise Unauthorized(f"this box needs the inference token: {how}",
                               headers=CHALLENGE)

    def allows_infer(self, header: str | None) -> bool:
        """True when no inference token is set, or when it (or the admin token) is sent."""
        if self._infer is None:
            return True
        token = _bearer(header)
        if token is None:
            return False
        digest = _digest(token)
        ok_infer = hmac.compare_digest(digest, self._infer)
        ok_admin = hmac.compare_digest(digest, self._admin)
        return ok_infer or ok_admin


    def token_id(self, header: str | None) -> str:
        """What the token in `header` is, never the token: 'admin', 'infer', or 'none' (no
        token, or one that is neither)."""
        token = _bearer(header)
        if token is None:
            return "none"
        digest = _digest(token)
        if hmac.compare_digest(digest, self._admin):
            return "admin"
        if self._infer is not None and hmac.compare_digest(digest, self._infer):
            return "infer"
        return "none"


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def admin_token(state_dir: str | Path) -> str:
    """The admin token from the state directory, created (mode 0600) on first start.

    When the state directory is read-only, a token for this run only is made and the log says
    so; the box keeps serving.
    """
    path = Path(state_dir) / ADMIN_TOKEN_FILE
    existing = read_text(path)
    if existing:
        check_token(existing, f"the admin token in {path}", "delete the file and restart: "
                    "a new one is made")
        _keep_private(path)
        return existing
    token = secrets.token_urlsafe(32)
    try:
        write_text_atomic(path, token + "\n", mode=0o600)
        log.warning("created the admin token in %s (read it there; it is not logged)", path)
    except OSError as exc:
        log.error("cannot save the admin token in %s (%s): admin routes use a token for "
                  "this run only, found nowhere; fix the state directory", path, exc)
    return token


def check_token(token: str, what: str, fix: str) -> None:
    """Raise ConfigError when `token` is too short to be safe, or has spaces in it."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{what} has {len(token)} characters; at least {MIN_TOKEN_CHARS} "
                          f"are needed to be safe: {fix}")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"{what} has spaces or control characters: {fix}")


def _keep_private(path: Path) -> None:
    # A token others can read is no secret: say so, and take their access away.
    mode = path.stat().st_mode & 0o777
    if not mode & 0o077:
        return
    try:
        path.chmod(0o600)
        log.warning("%s was readable by others (mode %o): it is now 0600; if others may "
                    "have read it, delete it and restart for a new one", path, mode)
    except OSError as exc:
        log.error("%s is readable by others (mode %o) and cannot be fixed (%s): chmod 600 "
                  "it, or delete it and restart for a new one", path, mode, exc)
