"""mDNS / DNS-SD with the `zeroconf` package: the box announces `_http._tcp` (browsers and
apps find its page) and `_appliance._tcp` (with the API path, version and models in TXT),
and `appliance discover` lists the boxes on the local network. Off with
`discovery.enabled = false`."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

HTTP = "_http._tcp.local."
BOX = "_appliance._tcp.local."
TXT_LIMIT = 250  # a TXT string holds 255 bytes


@dataclass(frozen=True)
class Box:
    """A box found on the network."""

    name: str
    address: str
    port: int
    path: str
    version: str
    models: str


def _interfaces(setting: str):
    from zeroconf import InterfaceChoice

    if setting.strip() in ("", "all"):
        return InterfaceChoice.All
    return [part.strip() for part in setting.split(",") if part.strip()]


def _addresses(interfaces) -> list[bytes]:
    if isinstance(interfaces, list):
        return [socket.inet_aton(a) for a in interfaces]
    from appliance.standalone import local_address

    return [socket.inet_aton(local_address())]


class Advertiser:
    """Registers the two services; `update` refreshes the models in TXT; `close` says
    goodbye so browsers forget the box at once."""

    def __init__(self, name: str, port: int, version: str, interfaces: str = "all") -> None:
        from zeroconf import IPVersion, Zeroconf

        self.name = name
        self.port = port
        self.version = version
        self.choice = _interfaces(interfaces)
        self.zeroconf = Zeroconf(interfaces=self.choice, ip_version=IPVersion.V4Only)
        self.infos: list = []

    def _info(self, kind: str, models: list[str]):
        from zeroconf import ServiceInfo

        listed = ",".join(models)
        if len(listed) > TXT_LIMIT:
            listed = listed[:TXT_LIMIT].rsplit(",", 1)[0] + ",..."
        return ServiceInfo(kind, f"{self.name}.{kind}", port=self.port,
                           addresses=_addresses(self.choice), server=f"{self.name}.local.",
                           properties={"path": "/v1" if kind == BOX else "/",
                                       "version": self.version, "models": listed})

    def start(self, models: list[str]) -> None:
        self.infos = [self._info(BOX, models), self._info(HTTP, models)]
        for info in self.infos:
            self.zeroconf.register_service(info, allow_name_change=True)

    def update(self, models: list[str]) -> None:
        self.infos = [self._info(BOX, models), self._info(HTTP, models)]
        for info in self.infos:
            self.zeroconf.update_service(info)

    def close(self) -> None:
        try:
            self.zeroconf.unregister_all_services()
        finally:
            self.zeroconf.close()


def discover(timeout: float = 3.0, interfaces: str = "all") -> list[Box]:
    """The boxes that answer within `timeout` seconds, sorted by name."""
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf

    zeroconf = Zeroconf(interfaces=_interfaces(interfaces), ip_version=IPVersion.V4Only)
    names: set[str] = set()

    class Listener:
        def add_service(self, zc, kind, name):
            names.add(name)

        def update_service(self, zc, kind, name):
            names.add(name)

        def remove_service(self, zc, kind, name):
            names.discard(name)

    try:
        ServiceBrowser(zeroconf, BOX, Listener())
        time.sleep(timeout)
        return sorted((box for box in (_resolve(zeroconf, n) for n in names) if box),
                      key=lambda b: b.name)
    finally:
        zeroconf.close()


def _resolve(zeroconf, name: str) -> Box | None:
    info = zeroconf.get_service_info(BOX, name, timeout=2000)
    if info is None or not info.addresses:
        return None
    text = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
    return Box(name.removesuffix("." + BOX), socket.inet_ntoa(info.addresses[0]), info.port,
               text.get("path", "/v1"), text.get("version", ""), text.get("models", ""))
