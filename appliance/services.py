"""The long-lived parts one process shares: settings, model registry, metrics, auth.

The HTTP API and (later) the standalone loop are both clients of one Services object.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from appliance.auth import Auth, admin_token
from appliance.config import Settings
from appliance.decodebudget import MB, DecodeBudget
from appliance.metrics import Metrics
from appliance.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request handler needs, built once per process (or per test)."""

    settings: Settings
    registry: Registry
    metrics: Metrics
    auth: Auth
    limiter: Any = None  # the per-client RateLimiter
    push_camera: Any = None  # a PushCamera when camera.kind is push
    screen: Any = None  # the KioskDisplay when display.kind is kiosk
    kiosk: Any = None  # the standalone loop (appliance.standalone.Kiosk) while it runs
    decodes: DecodeBudget | None = None  # the bytes image decodes may hold at once
    teacher: Any = None  # the taught models' examples and fits (appliance.teach)
    signer: Any = None  # signs result pictures (appliance.provenance); None: unsigned
    ledger: Any = None  # the usage ledger (appliance.ledger); None: nothing counted
    stopping: threading.Event = field(default_factory=threading.Event)
    # Requests accepted by the WSGI server but waiting for a worker thread (set by serve()).
    backlog: Any = field(default=lambda: 0)

    def push_frame(self, data: bytes) -> None:
        """Hand an uploaded picture to the push camera, when there is one."""
        if self.push_camera is not None:
            self.push_camera.push(data)

    @classmethod
    def build(cls, settings: Settings, admin: str | None = None) -> Services:
        """Create the services for `settings`; models are not loaded yet (call `start`)."""
        registry = Registry(settings)
        metrics = Metrics()
        metrics.add_gauges(lambda: _gauges(registry))
        from appliance.ratelimit import RateLimiter

        token = admin if admin is not None else admin_token(settings.state.dir)
        limiter = RateLimiter(settings.auth.rate_per_minute, settings.auth.burst)
        decodes = DecodeBudget(settings.imaging.max_decoding_mb * MB,
                               settings.imaging.max_decode_mb * MB)
        from appliance.provenance import open_signer
        from appliance.teach import Teacher

        return cls(settings, registry, metrics, Auth(token, settings.auth.infer_token),
                   limiter=limiter, decodes=decodes,
                   teacher=Teacher(settings, registry, decodes),
                   signer=open_signer(settings), ledger=open_ledger(settings))

    def start(self, background: bool = True) -> None:
        """Load the models, in a background thread unless `background` is False; start the
        ledger's writer."""
        if self.ledger is not None:
            self.ledger.start()
        if background:
            self.registry.start()
        else:
            self.registry.load_all()

    def close(self) -> None:
        self.stopping.set()
        self.registry.close()
        if self.ledger is not None:  # after the models: the last requests' counts written
            self.ledger.close()
        if self.signer is not None:
            self.signer.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_ledger(settings: Settings):
    """The usage ledger in the state folder; None when usage.enabled is false (nothing is
    counted, and no quota applies)."""
    if not settings.usage.enabled:
        return None
    from appliance.ledger import Ledger

    usage = settings.usage
    return Ledger(settings.state.dir, usage.flush_s, usage.keep_days,
                  {"infer": usage.quota_infer, "none": usage.quota_none})


def _gauges(registry: Registry) -> list[str]:
    lines = ["# HELP appliance_queue_depth Requests waiting per model.",
             "# TYPE appliance_queue_depth gauge"]
    runners = registry.runners()
    lines += [f'appliance_queue_depth{{model="{n}"}} {r.queue_depth}' for n, r in runners.items()]
    lines += ["# HELP appliance_model_up 1 when the model serves, 0 when it failed to load.",
              "# TYPE appliance_model_up gauge"]
    lines += [f'appliance_model_up{{model="{n}"}} 1' for n in runners]
    lines += [f'appliance_model_up{{model="{n}"}} 0' for n in registry.failures()]
    lines += ["# HELP appliance_ready 1 once models are loaded and one serves.",
              "# TYPE appliance_ready gauge", f"appliance_ready {int(registry.ready)}"]
    return lines
