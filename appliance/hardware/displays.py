"""Displays: `none`, `file` (PNG frames, for headless use and tests), `framebuffer`
(/dev/fbN directly, for Raspberry Pi OS Lite), `kiosk` (the /kiosk page in Chromium, fed by
Server-Sent Events) and `luma` (small SPI/I2C panels, optional)."""

from __future__ import annotations

import io
import math
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps

from appliance.config import Display as DisplaySettings
from appliance.errors import ApplianceError
from appliance.screens import fill
from appliance.storage import fsync_dir

SYSFS = Path("/sys/class/graphics")


class DisplayError(ApplianceError, OSError):
    """The display cannot be opened or written; the message names the device and the fix."""

    code = "display"


class Display(Protocol):
    size: tuple[int, int]

    def show(self, image: Image.Image) -> None: ...

    def close(self) -> None: ...


class NoDisplay:
    """No screen (the API alone)."""

    def __init__(self, size: tuple[int, int] = (640, 360)) -> None:
        self.size = size
        self.shown = 0

    def show(self, image: Image.Image) -> None:
        self.shown += 1

    def close(self) -> None:
        pass


class FileDisplay:
    """Each frame as frame-NNNNNN.png in a folder, keeping the newest `keep` frames."""

    def __init__(self, folder: str, size: tuple[int, int], keep: int = 100) -> None:
        self.folder = Path(folder)
        self.size = size
        self.keep = keep
        self.count = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DisplayError(f"display folder {self.folder} cannot be created: "
                               f"{exc.strerror}") from None

    def show(self, image: Image.Image) -> None:
        self.count += 1
        path = self.folder / f"frame-{self.count:06d}.png"
        tmp = path.with_suffix(".tmp")
        fill(image, self.size).save(tmp, "PNG", compress_level=1)
        os.replace(tmp, path)  # a reader never sees half a frame
        stale = self.folder / f"frame-{self.count - self.keep:06d}.png"
        if self.count > self.keep and stale.exists():
            stale.unlink()

    def latest(self) -> Path | None:
        return self.folder / f"frame-{self.count:06d}.png" if self.count else None

    def close(self) -> None:
        fsync_dir(self.folder)


class FramebufferDisplay:
    """Writes straight to /dev/fbN; geometry and depth come from /sys/class/graphics/fbN."""

    def __init__(self, device: str, sysfs: Path = SYSFS) -> None:
        self.device = device
        name = Path(device).name
        info = sysfs / name
        try:
            width, height = (int(v) for v in (info / "virtual_size").read_text().split(","))
            self.bpp = int((info / "bits_per_pixel").read_text())
            stride_file = info / "stride"
            self.stride = int(stride_file.read_text()) if stride_file.exists() \
                else width * self.bpp // 8
        except (OSError, ValueError) as exc:
            raise DisplayError(f"framebuffer {device}: cannot read its geometry from {info} "
                               f"({exc}); is a screen attached?") from None
        if self.bpp not in (16, 24, 32):
            raise DisplayError(f"framebuffer {device}: {self.bpp} bits per pixel is not "
                               "supported (16, 24 or 32 are)")
        self.size = (width, height)
        self.fd = _open_device(device)

    def show(self, image: Image.Image) -> None:
        data = encode(fill(image, self.size), self.bpp, self.stride)
        os.pwrite(self.fd, data, 0)

    def close(self) -> None:
        os.close(self.fd)


def _open_device(device: str) -> int:
    try:
        return os.open(device, os.O_WRONLY)
    except FileNotFoundError:
        raise DisplayError(f"no framebuffer at {device}: is a screen attached, and is the "
                           "right fbN set in display.path?") from None
    except PermissionError:
        raise DisplayError(f"no permission to write {device}: add the service's user to the "
                           "'video' group (sudo usermod -aG video USER)") from None


def encode(image: Image.Image, bpp: int, stride: int) -> bytes:
    """Pixels in the framebuffer's layout: RGB565 for 16 bits, BGR(X) for 24 and 32 bits,
    little-endian, each row padded to `stride` bytes."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint16)
    height, width, _ = rgb.shape
    if bpp == 16:
        packed = (rgb[..., 0] >> 3 << 11) | (rgb[..., 1] >> 2 << 5) | (rgb[..., 2] >> 3)
        rows = packed.astype("<u2").view(np.uint8).reshape(height, width * 2)
    else:
        bgr = rgb[..., ::-1].astype(np.uint8)
        if bpp == 32:
            bgr = np.concatenate([bgr, np.full((height, width, 1), 255, np.uint8)], axis=2)
        rows = bgr.reshape(height, -1)
    if rows.shape[1] < stride:
        rows = np.pad(rows, ((0, 0), (0, stride - rows.shape[1])))
    return rows.tobytes()


class KioskDisplay:
    """Frames for the /kiosk page: kept as JPEG and announced to every /v1/events listener.

    Frames are drawn for the screen of the newest open page that said its size (`watch`),
    scaled to at most the configured size's pixel count, so a portrait page gets portrait
    frames and a stranger cannot make the box draw bigger ones; with no such page, for the
    configured size. A page in the box's own browser (the installation's screen) wins over
    pages from the network, however new: a visitor's phone cannot reshape the wall."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.configured = size
        self.size = size
        # open pages' screens and whether each is on this machine, oldest first
        self._viewers: dict[int, tuple[tuple[int, int], bool]] = {}
        self._tickets = 0
        self._changed = threading.Condition()
        self.sequence = 0
        self.frame = b""
        self.closed = False

    def watch(self, size: tuple[int, int], local: bool = False) -> int:
        """A page showing frames on a screen of `size` pixels has opened (`local`: in a
        browser on this machine): draw for it until `unwatch(ticket)`. Returns the ticket."""
        with self._changed:
            self._tickets += 1
            self._viewers[self._tickets] = (size, local)
            self._resize()
            return self._tickets

    def unwatch(self, ticket: int) -> None:
        """That page has gone: draw for the newest page still open, else the configured size."""
        with self._changed:
            self._viewers.pop(ticket, None)
            self._resize()

    def _resize(self) -> None:
        local = [size for size, here in self._viewers.values() if here]
        pages = local or [size for size, _ in self._viewers.values()]
        wanted = pages[-1] if pages else self.configured
        self.size = within(wanted, self.configured[0] * self.configured[1])

    def show(self, image: Image.Image) -> None:
        buffer = io.BytesIO()
        frame = image.convert("RGB")
        if frame.size != self.size:  # drawn before a page changed the size: whole, not cut
            frame = ImageOps.contain(frame, self.size, Image.BILINEAR)
        frame.save(buffer, "JPEG", quality=85)
        with self._changed:
            self.frame = buffer.getvalue()
            self.sequence += 1
            self._changed.notify_all()

    def wait(self, after: int, timeout: float) -> int:
        """Block until a frame newer than `after` is shown (or `timeout`); the sequence."""
        with self._changed:
            self._changed.wait_for(lambda: self.sequence > after or self.closed, timeout)
            return self.sequence

    def close(self) -> None:
        """Wake every listener for good: their streams end (the box is stopping)."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()


class LumaDisplay:
    """A small OLED or LCD panel through luma (`pip install luma.oled` or `luma.lcd`);
    display.path is DRIVER:INTERFACE, for example ssd1306:i2c or st7789:spi."""

    def __init__(self, spec: str) -> None:
        driver, _, interface = (spec or "ssd1306:i2c").partition(":")
        try:
            from luma.core.interface import serial
        except ImportError:
            raise DisplayError("display luma needs luma.oled or luma.lcd: pip install "
                               "'appliance[luma]'") from None
        self.device = _luma_device(driver, serial, interface or "i2c")
        self.size = self.device.size

    def show(self, image: Image.Image) -> None:
        self.device.display(fill(image, self.size).convert(self.device.mode))

    def close(self) -> None:
        self.device.cleanup()


def _luma_device(driver: str, serial, interface: str):
    import importlib

    link = serial.i2c(port=1, address=0x3C) if interface == "i2c" else serial.spi()
    for package in ("luma.oled.device", "luma.lcd.device"):
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        if hasattr(module, driver):
            try:
                return getattr(module, driver)(link)
            except Exception as exc:  # luma raises DeviceNotFoundError and friends
                raise DisplayError(f"panel {driver} on {interface} does not answer ({exc}): "
                                   "check the wiring and that I2C/SPI is enabled") from None
    raise DisplayError(f"unknown luma driver {driver!r}: see luma.oled / luma.lcd")


def within(size: tuple[int, int], pixels: int) -> tuple[int, int]:
    """`size` scaled down, keeping its shape, to at most `pixels` pixels (never up)."""
    width, height = size
    scale = min(1.0, math.sqrt(pixels / (width * height)))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def open_display(settings: DisplaySettings) -> Display:
    """The display named by `display.kind`. Raises DisplayError naming the device."""
    size = (settings.width, settings.height)
    if settings.kind == "file":
        return FileDisplay(settings.path, size, settings.keep_frames)
    if settings.kind == "framebuffer":
        return FramebufferDisplay(settings.path)
    if settings.kind == "kiosk":
        return KioskDisplay(size)
    if settings.kind == "luma":
        return LumaDisplay(settings.path)
    return NoDisplay(size)
