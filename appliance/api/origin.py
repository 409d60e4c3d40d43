"""Who may ask: the `Host` a request names and the page a browser request comes from.

A page on any web site can make a visitor's browser send requests to the box (a form post or
a no-preflight fetch), and with DNS rebinding it can even read the answers: the browser then
believes the box is the attacker's own site, and sends that site's name as `Host`. So the box
answers only to its own names (any IP address, localhost, its host name, NAME.local, and the
names in `server.allowed_hosts`), and refuses browser requests made by pages of another
origin. Clients that are not browsers (curl, Home Assistant, Frigate) send neither `Origin`
nor `Sec-Fetch-Site` and are not affected.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from appliance.config import Settings
from appliance.errors import Forbidden

CROSS_SITE = ("cross-site", "same-site")


def check_origin(headers: Mapping[str, str], settings: Settings) -> None:
    """Raise Forbidden when `Host` is not one of the box's names, or when a browser sent the
    request from a page of another origin."""
    host = headers.get("Host", "")
    if host and not host_allowed(host, settings):
        raise Forbidden(f"this box does not answer to the name {_shown(host)!r}: use its "
                        "address or NAME.local, or add the name to the setting "
                        "server.allowed_hosts (a name behind a proxy, say)")
    origin = headers.get("Origin")
    if origin is not None:
        if not _same_origin(origin, host):
            raise Forbidden(f"requests from pages of another site ({_shown(origin)!r}) are "
                            "refused: use the box's own page, or call it from a program")
    elif headers.get("Sec-Fetch-Site", "").lower() in CROSS_SITE:
        raise Forbidden("requests from pages of another site are refused: use the box's own "
                        "page, or call it from a program")


def host_allowed(host: str, settings: Settings) -> bool:
    """True when `host` (a Host header: name or address, with or without a port) names
    this box."""
    name = hostname_of(host)
    extra = {n.strip().lower().rstrip(".") for n in settings.server.allowed_hosts.split(",")}
    if "*" in extra:
        return True
    if _is_address(name) or name == "localhost" or name.endswith(".localhost"):
        return True
    return name in own_names(settings) | (extra - {""})


def own_names(settings: Settings) -> set[str]:
    """The host name, its first label, and NAME.local for the mDNS name and the host name."""
    full = socket.gethostname().lower().rstrip(".")
    short = full.split(".")[0]
    mdns = (settings.discovery.name or short).lower()
    return {full, short, f"{short}.local", f"{mdns}.local", mdns}


def hostname_of(host: str) -> str:
    """The name or address in a Host header, without the port, lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _same_origin(origin: str, host: str) -> bool:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        return False  # includes Origin: null (sandboxed frames, files)
    name, host_port = _split_host(host)
    if parts.hostname.lower().rstrip(".") != name:
        return False
    # A proxy that forwards the name without the port (nginx's $host) says nothing about the
    # port: the name, already checked as one of the box's, decides.
    default = 443 if parts.scheme == "https" else 80
    return host_port is None or host_port == (port or default)


def _split_host(host: str) -> tuple[str, int | None]:
    """(name, port or None) of a Host header."""
    rest = host.strip().lower()
    if rest.startswith("["):
        rest = rest.split("]", 1)[1]
    elif rest.count(":") != 1:
        rest = ""
    port = rest.rsplit(":", 1)[1] if ":" in rest else ""
    return hostname_of(host), int(port) if port.isdigit() else None


def _shown(text: str) -> str:
    # Echo a stranger's header back only in part, and printable.
    return "".join(c if c.isprintable() else "?" for c in text[:100])
