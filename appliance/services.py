"""The long-lived parts one process shares: settings, model registry, metrics, auth.

The HTTP API and (later) the standalone loop are both clients of one Services object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance.auth import Auth, admin_token
from appliance.config import Settings
from appliance.decodebudget import MB, DecodeBudget
from appliance.metrics import Metrics
from appliance.registry import Registry

if TYPE_CHECKING:  # the heavier parts are imported where they are made
    from appliance.hardware.cameras import PushCamera
    from appliance.hardware.displays import KioskDisplay
    from appliance.ledger import Ledger
    from appliance.provenance import Signer
    from appliance.ratelimit import RateLimiter
    from appliance.standalone import StandaloneLoop
    from appliance.teach import Teacher

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request handler needs, built whole by `build` before the app (once per
    process, or per test): what the API and the standalone loop share."""

    settings: Settings
    registry: Registry
    metrics: Metrics
    auth: Auth
    limiter: RateLimiter
    decodes: DecodeBudget  # the bytes image decodes may hold at once
    teacher: Teacher  # the taught models' examples and fits
    signer: Signer | None = None  # signs result pictures; None: unsigned
    ledger: Ledger | None = None  # the usage ledger; None: nothing counted
    # With standalone.enabled: the /kiosk page's display (display.kind kiosk), and the
    # camera that uploads to the API feed (camera.kind push). The loop draws on and reads
    # from these; the API serves the one and feeds the other (api/models.feed_push_camera:
    # each picture /v1's inference routes answered), from the first request on.
    screen: KioskDisplay | None = None
    push_camera: PushCamera | None = None
    loop: StandaloneLoop | None = None  # the standalone loop, while it runs (teach screens)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Requests accepted by the WSGI server but waiting for a worker thread (set by serve()).
    backlog: Callable[[], int] = field(default=lambda: 0)

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

        screen, push_camera = _standalone_parts(settings, decodes)
        return cls(settings, registry, metrics, Auth(token, settings.auth.infer_token),
                   limiter=limiter, decodes=decodes,
                   teacher=Teacher(settings, registry, decodes),
                   signer=open_signer(settings), ledger=open_ledger(settings),
                   screen=screen, push_camera=push_camera)

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


def _standalone_parts(settings: Settings, decodes: DecodeBudget
                      ) -> tuple[KioskDisplay | None, PushCamera | None]:
    """The kiosk page's display and the push camera, when the standalone loop will use
    them: made with the services, since the API serves one and feeds the other."""
    if not settings.standalone.enabled:
        return None, None
    from appliance.hardware.cameras import PushCamera
    from appliance.hardware.displays import KioskDisplay

    size = (settings.display.width, settings.display.height)
    screen = KioskDisplay(size) if settings.display.kind == "kiosk" else None
    push_camera = PushCamera(size, decodes) if settings.camera.kind == "push" else None
    return screen, push_camera


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
