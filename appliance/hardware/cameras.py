"""Cameras: `none`, `folder` (a slideshow), `push` (the last image POSTed to the API),
`v4l2` (USB webcams through OpenCV, optional) and `picamera2` (the Raspberry Pi camera,
optional). Each gives the newest frame, never a queue of old ones."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from appliance import imaging
from appliance.config import Camera as CameraSettings
from appliance.errors import ApplianceError

if TYPE_CHECKING:
    from appliance.decodebudget import DecodeBudget

PICTURES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


class CameraError(ApplianceError, OSError):
    """The camera cannot give a frame; the message says what to check."""

    status = 503
    code = "camera"


class Camera(Protocol):
    def read(self) -> tuple[int, Image.Image] | None:
        """(sequence number, newest frame), or None when there is none yet. Raises
        CameraError when the camera is gone."""

    def close(self) -> None: ...


class NoCamera:
    """No camera: the loop shows the attract screen."""

    def read(self) -> None:
        return None

    def close(self) -> None:
        pass


class FolderCamera:
    """Cycles through the pictures in a folder, one every `interval_s` seconds."""

    def __init__(self, folder: str, interval_s: float, clock=time.monotonic) -> None:
        self.folder = Path(folder)
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self._cache: dict[Path, Image.Image] = {}

    def _pictures(self) -> list[Path]:
        if not self.folder.is_dir():
            raise CameraError(f"camera folder {self.folder} is missing: create it or fix "
                              "camera.path")
        found = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in PICTURES)
        if not found:
            raise CameraError(f"camera folder {self.folder} has no pictures: add JPEG or "
                              "PNG files")
        return found

    def read(self) -> tuple[int, Image.Image]:
        pictures = self._pictures()
        index = int((self.clock() - self.started) / self.interval_s)
        path = pictures[index % len(pictures)]
        if path not in self._cache:
            try:
                self._cache = {path: imaging.decode(path.read_bytes(), 100_000_000)}
            except (ApplianceError, OSError) as exc:
                raise CameraError(f"picture {path.name} cannot be read: "
                                  f"{getattr(exc, 'message', exc)}") from None
        return index, self._cache[path]

    def close(self) -> None:
        self._cache.clear()


class PushCamera:
    """The last picture /v1's inference routes answered becomes the frame (a phone or a
    script is the camera): `appliance.api.models.feed_push_camera` pushes each one.

    Uploads are kept as bytes and decoded here, in the loop's thread, at the screen's size:
    the request path decodes only as much as its model needs. The decode holds its bytes in
    `budget` (the server's DecodeBudget), like every decode of a stranger's upload.
    """

    def __init__(self, size: tuple[int, int] = (1920, 1080),
                 budget: DecodeBudget | None = None) -> None:
        self.size = size
        self.budget = budget
        self._lock = threading.Lock()
        self._data: tuple[int, bytes] | None = None
        self._frame: tuple[int, Image.Image] | None = None

    def push(self, data: bytes) -> None:
        with self._lock:
            number = self._data[0] + 1 if self._data else 1
            self._data = (number, data)

    def read(self) -> tuple[int, Image.Image] | None:
        with self._lock:
            data = self._data
        if data is None:
            return None
        if self._frame is None or self._frame[0] != data[0]:
            try:
                image = imaging.decode(data[1], 100_000_000, self.size, self.budget)
            except ApplianceError as exc:
                raise CameraError(f"the pushed picture cannot be read: {exc.message}") \
                    from None
            self._frame = (data[0], image)
        return self._frame

    def close(self) -> None:
        with self._lock:
            self._data = None
        self._frame = None


class V4L2Camera:
    """A USB webcam through OpenCV (`pip install opencv-python-headless`)."""

    def __init__(self, settings: CameraSettings) -> None:
        try:
            import cv2
        except ImportError:
            raise CameraError("camera v4l2 needs OpenCV: pip install 'appliance[camera]' "
                              "(opencv-python-headless)") from None
        self.cv2 = cv2
        self.path = settings.path
        self.capture = cv2.VideoCapture(settings.path, cv2.CAP_V4L2)
        self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
        self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
        self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
        self.count = 0
        if not self.capture.isOpened():
            raise CameraError(f"camera {settings.path} cannot be opened: check the cable, "
                              "and that the service's user is in the 'video' group")

    def read(self) -> tuple[int, Image.Image]:
        ok, frame = self.capture.read()
        if not ok:
            raise CameraError(f"camera {self.path} stopped giving frames: check the USB "
                              "cable")
        self.count += 1
        return self.count, Image.fromarray(self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        self.capture.release()


class Picamera2Camera:
    """The Raspberry Pi camera. picamera2 comes from Raspberry Pi OS (apt install
    python3-picamera2); make the virtualenv with --system-site-packages to see it."""

    def __init__(self, settings: CameraSettings) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError("camera picamera2 needs Raspberry Pi OS's python3-picamera2 and "
                              "a virtualenv made with --system-site-packages") from None
        try:
            self.camera = Picamera2()
            size = (settings.width, settings.height)
            self.camera.configure(self.camera.create_preview_configuration(
                main={"size": size, "format": "RGB888"}))
            self.camera.start()
        except Exception as exc:  # libcamera raises its own types
            raise CameraError(f"the Pi camera cannot start ({exc}): check the ribbon "
                              "cable, then restart") from None
        self.count = 0

    def read(self) -> tuple[int, Image.Image]:
        try:
            pixels = self.camera.capture_array()
        except Exception as exc:
            raise CameraError(f"the Pi camera stopped ({exc}): check the ribbon cable") \
                from None
        self.count += 1
        return self.count, Image.fromarray(pixels[..., :3][..., ::-1])  # BGR order in memory

    def close(self) -> None:
        self.camera.close()


class RetryingCamera:
    """Opens a camera lazily and again after it fails (a USB camera unplugged and plugged
    back); until then each read raises the CameraError that says what to check."""

    def __init__(self, opener) -> None:
        self.opener = opener
        self.camera: Camera | None = None

    def read(self) -> tuple[int, Image.Image] | None:
        if self.camera is None:
            self.camera = self.opener()
        try:
            return self.camera.read()
        except CameraError:
            self.close()
            raise

    def close(self) -> None:
        if self.camera is not None:
            try:
                self.camera.close()
            finally:
                self.camera = None


def open_camera(settings: CameraSettings, push: PushCamera | None = None) -> Camera:
    """The camera named by `camera.kind`. Raises CameraError when it cannot start."""
    if settings.kind == "folder":
        return FolderCamera(settings.path, settings.interval_s)
    if settings.kind == "push":
        return push or PushCamera()
    if settings.kind == "v4l2":
        return V4L2Camera(settings)
    if settings.kind == "picamera2":
        return Picamera2Camera(settings)
    return NoCamera()
