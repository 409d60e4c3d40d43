"""`appliance serve`: the production WSGI server (waitress) around the app.

Models load in the background while the socket already answers `/healthz`. SIGTERM and
SIGINT stop accepting new connections, let in-flight requests finish (up to DRAIN_S), then
stop the models (a run still going then is a wedge, and is terminated) and close the sockets
once the last answers are out.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time

from appliance.config import Settings

log = logging.getLogger(__name__)
DRAIN_S = 10.0
SETTLE_S = 1.0
POLL_S = 0.2


def serve(settings: Settings, announce=print) -> None:
    """Serve until SIGTERM/SIGINT. Raises OSError when the port cannot be bound."""
    from appliance.memory import tune_malloc
    from appliance.services import Services

    tune_malloc()  # before any worker or onnxruntime thread allocates
    services = Services.build(settings)
    # The display first when there is one: a display that cannot open stops the start
    # before any model loads. Without one, the models load while the web app is built,
    # on the core its imports leave idle (start to ready: 0.3-0.5 s sooner here).
    early = not settings.standalone.enabled
    if early:
        services.start(background=True)
    try:
        server = _web_server(settings, services)
    except BaseException:
        services.close()
        raise
    from appliance.standalone import start_standalone
    from appliance.zmqdetector import start as start_zmq

    stop = threading.Event()
    _install_signals(stop)
    gallery = zmq = None
    watchdog = systemd_watchdog(services)
    announcer = Announcer(services, server.effective_port)
    try:
        # The display first: one that cannot open stops the start before any model loads.
        gallery = start_standalone(services) if settings.standalone.enabled else None
        if not early:
            services.start(background=True)
        zmq = start_zmq(services)  # Frigate's remote detector, when compat.zmq_endpoint is set
        watchdog.start()
        announcer.start()
        announce(banner(settings, server.effective_port))
        _loop(server, stop)
        watchdog.stop()
        _end_streams(services)
        _drain(server)
    finally:
        watchdog.stop()
        announcer.close()
        if zmq is not None:
            zmq.close()
        if gallery is not None:
            gallery.close()
        # The models before the sockets: a run still going after the drain is a wedge; it
        # is terminated, and its request's answer still goes out before the sockets close.
        services.close()
        _settle(server, SETTLE_S)
        server.task_dispatcher.shutdown(timeout=1)
        server.close()
        log.info("stopped")


def _web_server(settings: Settings, services):
    """The app behind waitress on its socket. Raises OSError when the port cannot be bound."""
    from appliance.api import body_limits, create_app
    from appliance.httpserver import create_server

    app = create_app(settings, services)
    limits = body_limits(app, settings)
    server = create_server(app, limits, **waitress_options(settings, limits.largest()))
    services.backlog = lambda: len(server.task_dispatcher.queue)
    return server


class Announcer:
    """mDNS announcement once the models are loaded (their names go in TXT); a network that
    refuses multicast is logged, never fatal. A box stopping before its models are loaded
    is never announced, and one stopping while it registers does not say it announced."""

    def __init__(self, services, port: int) -> None:
        self.services = services
        self.port = int(port)  # waitress gives the bound port as text
        self.advertiser = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        if self.services.settings.discovery.enabled:
            self._thread = threading.Thread(target=self._run, name="mdns", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        from appliance import __version__
        from appliance.discovery import Advertiser

        settings = self.services.settings.discovery
        while not self.services.registry.wait_loaded(POLL_S):
            if self._stopping.is_set():
                return
        if self._stopping.is_set():
            return
        name = name_of(self.services.settings)
        try:
            self.advertiser = Advertiser(name, self.port, __version__, settings.interfaces)
            self.advertiser.start(sorted(self.services.registry.runners()))
        except Exception as exc:  # zeroconf raises its own types; none may stop serving
            log.warning("mDNS announcement failed (%s): the box serves, but is not listed "
                        "as .local", exc)
            return
        if not self._stopping.is_set():
            log.info("announced %s.local on mDNS", name)

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.advertiser is not None:
            self.advertiser.close()


def name_of(settings: Settings) -> str:
    """The mDNS name: discovery.name, or the host name's first label."""
    return settings.discovery.name or socket.gethostname().split(".")[0]


def systemd_watchdog(services):
    """READY=1 when loading is over (even with every model broken: the box then stays up
    with /readyz 503 rather than being restarted in a loop), STATUS, and WATCHDOG=1 only
    while no model has been stuck on one job for longer than models.timeout_s."""
    from appliance.sdnotify import Notifier, Watchdog, progressing

    registry, metrics = services.registry, services.metrics
    limit = services.settings.models.timeout_s

    def status() -> str:
        serving = len(registry.runners())
        return (f"{serving} models serving, active {registry.active or 'none'}; "
                f"{metrics.total_requests()} requests")

    return Watchdog(Notifier(), ready=lambda: registry.loaded,
                    progressing=lambda: progressing(registry.runners().values(), limit),
                    status=status)


def waitress_options(settings: Settings, body_cap: int) -> dict:
    """waitress settings: threads, and `body_cap`, the largest body of any route, as
    waitress's own cap on every body (a backstop: each route's own cap is checked from the
    headers by appliance.httpserver, before any body is read)."""
    return {
        "host": settings.server.host, "port": settings.server.port,
        "threads": settings.server.threads, "ident": "appliance",
        "max_request_body_size": body_cap,
        "channel_timeout": 30, "connection_limit": 256, "cleanup_interval": 10,
        "clear_untrusted_proxy_headers": True,
    }


def banner(settings: Settings, port: int) -> str:
    """What `make run` ends with: the URL, one curl example and how to stop."""
    host = settings.server.host
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    local = (f"  also: http://{name_of(settings)}.local:{port}/ (mDNS)\n"
             if settings.discovery.enabled else "")
    return (f"appliance is serving on {url}/ (bound to {host}:{port})\n{local}"
            f"  try:  curl -F image=@photo.jpg {url}/v1/models/efficientnet-lite0/infer\n"
            f"  models: {url}/v1/models   ready: {url}/readyz\n"
            f"  stop with Ctrl+C")


def _install_signals(stop: threading.Event) -> None:
    def handler(signum, frame):
        log.info("signal %s: finishing in-flight requests, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _loop(server, stop: threading.Event) -> None:
    from waitress import wasyncore

    while not stop.is_set():
        wasyncore.loop(timeout=POLL_S, map=server._map, count=1)


def _end_streams(services) -> None:
    # Live event streams would hold the drain for its whole length: they end first (the
    # kiosk page reconnects to whichever box answers next).
    services.stopping.set()
    if services.screen is not None:
        services.screen.close()


def _drain(server) -> None:
    server.accepting = False
    server.del_channel()
    server.socket.close()
    _settle(server, DRAIN_S)


def _settle(server, seconds: float) -> None:
    """Serve the connections already open until none has work left, or `seconds` pass."""
    from waitress import wasyncore

    deadline = time.monotonic() + seconds
    while _busy(server) and time.monotonic() < deadline:
        wasyncore.loop(timeout=POLL_S, map=server._map, count=1)


def _busy(server) -> bool:
    dispatcher = server.task_dispatcher
    if dispatcher.active_count or dispatcher.queue:
        return True
    return any(getattr(ch, "total_outbufs_len", 0) or getattr(ch, "requests", None)
               for ch in list(server._map.values()))
