"""The gallery loop: camera -> active model -> screen -> display, beside the HTTP API.

It is just another client of the shared engine. The newest frame always wins (a frame that
arrives while the model is busy replaces the one waiting), an error shows the error card and
the loop goes on, and nothing here can stop the API: the loop runs in its own thread and
catches everything.
"""

from __future__ import annotations

import io
import logging
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from appliance import imaging, pipeline, screens
from appliance.errors import ApplianceError
from appliance.hardware.cameras import Camera, CameraError
from appliance.hardware.displays import Display
from appliance.services import Services

log = logging.getLogger(__name__)


def load_backdrop(path: str, max_pixels: int) -> Image.Image | None:
    """The owner's backdrop picture for cut-outs, or None (unset, or unreadable: logged, and
    the screen falls back to its gradient rather than stopping the loop)."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(64 << 20)
        return imaging.decode(data, max_pixels, (1920, 1920))
    except (OSError, ApplianceError) as exc:
        log.warning("standalone.backdrop %s cannot be used (%s): cut-outs stand on a "
                    "gradient", path, getattr(exc, "message", exc))
        return None
CHANGE = 8.0  # mean absolute difference (0-255) of a 32x32 grey thumbnail that counts as new
BACKOFF_MAX_S = 30.0


class StandaloneLoop:
    """The camera -> model -> screen loop of a gallery installation, and the actions the
    buttons call. Thread-safe."""

    def __init__(self, services: Services, camera: Camera, display: Display,
                 clock: Callable[[], float] = time.monotonic,
                 run_command: Callable[[list[str]], object] = subprocess.run) -> None:
        self.services = services
        self.settings = services.settings.standalone
        self.camera = camera
        self.display = display
        self.clock = clock
        self.run_command = run_command
        self.indicate: Callable[[str], None] = lambda state: None  # the status LED
        self._indicated = ""
        self.mode = "auto"
        self.frozen_until = 0.0
        self.status_until = clock() + 8.0  # the owner sees the address at start
        self.last_change = clock()
        self.retry_at = 0.0
        self.backoff = 1.0
        self.error: tuple[str, str] | None = None
        self.screen: Image.Image | None = None
        self.frames = self.shown = 0
        self.latencies: list[float] = []
        self._seen = -1
        self._thumb: np.ndarray | None = None
        self._capture_wanted = False
        self._made_by = None  # the bundle whose result is on the screen, for the capture's
        self.teaching = None  # a teachscreen.TeachSession while the teach screen is up
        self._frame: Image.Image | None = None  # the picture on the teach screen
        self._teach_drawn: tuple[int, int] | None = None
        self._drawn_size = display.size  # a kiosk page of another shape changes it
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backdrop = load_backdrop(self.settings.backdrop,
                                      services.settings.imaging.max_pixels)

    # -- actions (buttons, tests) ------------------------------------------------------
    def next_model(self, step: int = 1) -> str:
        """Activate the next serving model (or the previous with step=-1); on the teach
        screen, choose the next class instead."""
        teaching = self.teaching
        if teaching is not None:
            self._touched()
            return teaching.choose(step)
        with self._lock:
            names = sorted(self.services.registry.runners())
            if not names:
                return ""
            active = self.services.registry.active
            index = names.index(active) if active in names else -1
            name = names[(index + step) % len(names)]
            self.services.registry.activate(name)
            self._touched()
            return name

    def previous_model(self) -> str:
        return self.next_model(-1)

    def capture(self) -> None:
        """Freeze the current result for `capture_s` seconds and save it to the gallery; on
        the teach screen, add the picture on it to the chosen class (refit and serve)."""
        teaching = self.teaching
        if teaching is not None:
            self._touched()
            teaching.capture(self._frame)  # not under the lock: the screen says "adding"
            return
        with self._lock:
            self._touched()
            self.error = None
            if self.mode == "manual":
                self._capture_wanted = True  # the next frame is inferred, then frozen
                return
            self._freeze_and_save()

    def hold(self) -> str:
        """The capture button held: finish teaching, else switch auto/manual. What it did."""
        if self.teaching is not None:
            self.stop_teaching()
            return "teaching finished"
        return f"mode is now {self.toggle_mode()}"

    def teach(self, name: str, classes: list[str]):
        """Show the teach screen for taught model `name` with `classes` (added to those it
        has). Raises BadRequest (see TeachSession)."""
        from appliance.teachscreen import TeachSession

        session = TeachSession(self.services.teacher, name, classes)
        with self._lock:
            self.teaching, self._teach_drawn = session, None
            self.status_until = 0.0
            self._touched()
        return session

    def stop_teaching(self) -> None:
        """Back to the gallery, on the model just taught when it answers."""
        with self._lock:
            session, self.teaching = self.teaching, None
            if session is not None and session.name in self.services.registry.runners():
                self.services.registry.activate(session.name)
            self._seen = -1  # draw the next frame as a result
            self._touched()

    def toggle_mode(self) -> str:
        with self._lock:
            self.mode = "manual" if self.mode == "auto" else "auto"
            self._touched()
            return self.mode

    def show_status(self, seconds: float = 10.0) -> None:
        with self._lock:
            self.status_until = self.clock() + seconds
            self._touched()

    def shutdown(self) -> None:
        command = shlex.split(self.settings.shutdown_command)
        log.warning("shutdown buttons held: running %s", command)
        self.run_command(command)

    # -- the loop ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="standalone", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Frames until `stop`; never raises (the API must outlive any fault here)."""
        period = 1.0 / self.settings.max_fps
        while not self._stop.is_set():
            started = self.clock()
            try:
                self.tick()
            except Exception:  # the loop is the last line of defence for the API
                log.exception("standalone loop fault; carrying on")
            self._stop.wait(max(0.0, period - (self.clock() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def tick(self) -> Image.Image | None:
        """One step: maybe read, infer, render and show. Returns what was shown, if anything."""
        with self._lock:
            screen = self._next_screen()
        if screen is not None:
            self.display.show(screen)
            self.shown += 1
        return screen

    def _light(self, state: str) -> None:
        """The status LED: busy while models load, error on a fault, ready otherwise."""
        if state != self._indicated:
            self._indicated = state
            self.indicate(state)

    def _next_screen(self) -> Image.Image | None:
        now = self.clock()
        self._redraw_if_resized()
        if not self.services.registry.loaded:
            self._light("busy")
        elif self.error is None:
            self._light("ready")
        if now < self.status_until:
            return screens.status(self.display.size, self.status_info())
        if self.teaching is not None:
            return self._teach_screen(now)
        if self.frozen_until > now:
            return None  # the captured result stays on screen
        if self.error is not None and now < self.retry_at:
            return self._error_screen()
        frame = self._read(now)
        if self.error is not None:
            return self._error_screen()
        if frame is None:
            return self._idle_screen(now) if self._idle(now) or self.screen is None else None
        return self._frame_screen(frame, now)

    def _redraw_if_resized(self) -> None:
        """The display's size changed (a kiosk page on a screen of another shape opened):
        draw the picture on the screen again, for the new size."""
        if self.display.size != self._drawn_size:
            self._drawn_size = self.display.size
            self._seen, self._teach_drawn = -1, None

    def _read(self, now: float) -> tuple[int, Image.Image] | None:
        try:
            frame = self.camera.read()
        except CameraError as exc:
            self._fail(exc.message, "Check the camera, then press any button", now)
            return None
        if self.error is not None:
            self._seen = -1  # a camera opened again counts its frames from the start
        self.error = None
        self.backoff = 1.0
        if frame is None or frame[0] == self._seen:
            return None
        return frame

    def _frame_screen(self, frame: tuple[int, Image.Image], now: float) -> Image.Image:
        number, image = frame
        self._seen = number
        self._note_change(image, now)
        if self.mode == "manual" and not self._capture_wanted:
            screen = screens.result(self.display.size, image, "none", {}, None,
                                    self.caption(), self.settings.hint)
            return screen
        screen = self._infer(image, now)
        if self._capture_wanted and self.error is None:
            self._capture_wanted = False
            self._freeze_and_save()
        return screen

    def _infer(self, image: Image.Image, now: float) -> Image.Image:
        captured = self.clock()
        try:
            runner = self.services.registry.get_active()
            answer = pipeline.infer_image(runner, image)
        except ApplianceError as exc:
            self._fail(exc.message, "The model could not run: check GET /readyz", now)
            return self._error_screen()
        hint = self.settings.hint if self._idle(now) else ""
        self.screen = screens.result(self.display.size, image, runner.bundle.manifest.task,
                                     answer.result.body, answer.result.image, self.caption(),
                                     hint, self.backdrop)
        self._made_by = runner.bundle.manifest
        self.frames += 1
        self.latencies.append(self.clock() - captured)
        del self.latencies[:-200]
        return self.screen

    def _teach_screen(self, now: float) -> Image.Image | None:
        """The teach screen, drawn when the camera has a new picture or the session
        changed; the camera's error card when it has none."""
        frame = self._read(now)
        if self.error is not None:
            return self._error_screen()
        if frame is not None:
            self._seen, self._frame = frame
        drawn = (self._seen, self.teaching.version)
        if drawn == self._teach_drawn:
            return None
        self._teach_drawn = drawn
        return screens.teach(self.display.size, self._frame, self.teaching.view())

    def _idle(self, now: float) -> bool:
        return now - self.last_change >= self.settings.idle_s

    def _idle_screen(self, now: float) -> Image.Image:
        pictures = self._gallery_pictures() or ([self.screen] if self.screen else [])
        return screens.attract(self.display.size, pictures, now, self.caption(),
                               self.settings.hint)

    def _note_change(self, image: Image.Image, now: float) -> None:
        thumb = np.asarray(image.convert("L").resize((32, 32)), dtype=np.float32)
        if self._thumb is None or float(np.abs(thumb - self._thumb).mean()) > CHANGE:
            self.last_change = now
        self._thumb = thumb

    def _touched(self) -> None:
        self.last_change = self.clock()
        self.retry_at = 0.0

    def _fail(self, what: str, action: str, now: float) -> None:
        if self.error is None:
            log.error("standalone: %s", what)
            self._light("error")
        self.error = (what, action)
        self.retry_at = now + self.backoff
        self.backoff = min(BACKOFF_MAX_S, self.backoff * 2)

    def _error_screen(self) -> Image.Image:
        what, action = self.error
        return screens.error(self.display.size, what, action, self.status_info())

    def _freeze_and_save(self) -> None:
        if self.screen is None:
            return
        self.frozen_until = self.clock() + self.settings.capture_s
        self.display.show(self.screen)
        try:
            self._save(self.screen)
        except OSError as exc:
            log.warning("capture not saved (%s): the gallery folder is not writable", exc)

    # -- gallery, captions, status -----------------------------------------------------
    @property
    def gallery(self) -> Path:
        configured = self.settings.gallery_dir
        return Path(configured) if configured else Path(self.services.settings.state.dir) / \
            "gallery"

    def _save(self, screen: Image.Image) -> Path:
        from appliance.storage import write_bytes_atomic

        path = self.gallery / f"capture-{time.strftime('%Y%m%d-%H%M%S')}-{self.shown:05d}.jpg"
        write_bytes_atomic(path, self._signed_jpeg(screen))
        return path

    def _signed_jpeg(self, screen: Image.Image) -> bytes:
        """The capture as a JPEG, with the box's Content Credentials when provenance is on:
        made here, by the model whose result is on the screen."""
        from appliance import provenance

        buffer = io.BytesIO()
        screen.convert("RGB").save(buffer, "JPEG", quality=92)
        data, made_by = buffer.getvalue(), self._made_by
        if made_by is None or getattr(self.services, "signer", None) is None:
            return data
        claim = provenance.Claim(made_by.name, made_by.version, made_by.task,
                                 made_by.attribution, None,
                                 result_id=provenance.result_id(made_by.name, made_by.version,
                                                                None, data),
                                 source_type=provenance.COMPOSITE)
        return provenance.stamp(self.services.signer, data, "image/jpeg", claim)

    def _gallery_pictures(self, limit: int = 8) -> list[Image.Image]:
        try:
            paths = sorted(self.gallery.glob("capture-*.jpg"))[-limit:]
            return [Image.open(p).convert("RGB") for p in paths]
        except OSError:
            return []

    def caption(self) -> screens.Caption | None:
        try:
            runner = self.services.registry.get_active()
        except ApplianceError:
            return None
        credit = runner.bundle.manifest.attribution
        return screens.Caption(runner.bundle.name, credit["author"], credit["license"])

    def status_info(self) -> screens.Status:
        caption = self.caption()
        return screens.Status(
            address=local_address(), name=socket.gethostname(),
            port=self.services.settings.server.port,
            model=caption.model if caption else "none", author=caption.author if caption
            else "-", license=caption.license if caption else "-", mode=self.mode)


class StandaloneParts:
    """What `start_standalone` opened (the loop, the buttons, the display, the camera),
    closed in reverse order of opening."""

    def __init__(self, kiosk, buttons, display, camera) -> None:
        self.kiosk, self.buttons, self.display, self.camera = kiosk, buttons, display, camera

    def close(self) -> None:
        self.kiosk.stop()
        if self.kiosk.services.loop is self.kiosk:
            self.kiosk.services.loop = None
        if self.buttons is not None:
            self.buttons.close()
        self.display.close()
        self.camera.close()


def start_standalone(services: Services, pin_factory=None) -> StandaloneParts:
    """Open the display (a failure is fatal: it names the device), the camera (a failure
    shows on screen and is retried), the buttons, and start the loop.

    Raises DisplayError, or ConfigError when buttons are set but no GPIO is available.
    """
    from appliance.config import NO_PIN
    from appliance.hardware.cameras import RetryingCamera, open_camera
    from appliance.hardware.displays import open_display

    settings = services.settings
    display = services.screen or open_display(settings.display)  # the kiosk page's: built
    if services.push_camera is not None:
        services.push_camera.size = display.size  # a framebuffer's size is the device's
    camera = RetryingCamera(lambda: open_camera(settings.camera, services.push_camera))
    kiosk = StandaloneLoop(services, camera, display)
    services.loop = kiosk  # POST /v1/standalone/teach puts up its teach screen
    pins = [getattr(settings.buttons, n) for n in ("next", "previous", "capture", "shutdown",
                                                  "led")]
    buttons = _buttons(settings, kiosk, pin_factory) if any(p != NO_PIN for p in pins) \
        else None
    if buttons is not None:
        kiosk.indicate = buttons.show
    kiosk.start()
    return StandaloneParts(kiosk, buttons, display, camera)


def _buttons(settings, kiosk, pin_factory):
    from appliance.errors import ConfigError
    from appliance.hardware.buttons import Buttons

    try:
        return Buttons(settings.buttons, kiosk, pin_factory)
    except Exception as exc:  # gpiozero's BadPinFactory and friends
        raise ConfigError(f"buttons are set but GPIO is not available ({exc}): on a Pi, "
                          "install python3-lgpio; elsewhere set GPIOZERO_PIN_FACTORY=mock "
                          "or unset the buttons.* pins") from None


def local_address() -> str:
    """This box's first IPv4 address outside loopback, read from the interfaces (nothing is
    sent or connected); 127.0.0.1 when there is none."""
    import fcntl
    import struct

    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(probe.fileno(), 0x8915,  # SIOCGIFADDR
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
        return socket.inet_ntoa(packed[20:24])
    return "127.0.0.1"
