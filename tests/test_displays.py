import os
import sys

import numpy as np
import pytest
from PIL import Image

from appliance import config
from appliance.hardware.displays import (
    DisplayError,
    FileDisplay,
    FramebufferDisplay,
    KioskDisplay,
    LumaDisplay,
    encode,
    open_display,
)


def test_file_display_writes_and_keeps_the_newest(tmp_path):
    display = FileDisplay(str(tmp_path / "frames"), (64, 36), keep=2)
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        display.show(Image.new("RGB", (10, 10), colour))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["frame-000002.png", "frame-000003.png"]
    with Image.open(display.latest()) as image:
        assert image.size == (64, 36) and image.getpixel((5, 5)) == (0, 0, 255)
    display.close()


def _fake_fb(tmp_path, width, height, bpp, stride=None):
    sysfs = tmp_path / "sys"
    (sysfs / "fb0").mkdir(parents=True)
    (sysfs / "fb0" / "virtual_size").write_text(f"{width},{height}\n")
    (sysfs / "fb0" / "bits_per_pixel").write_text(f"{bpp}\n")
    if stride:
        (sysfs / "fb0" / "stride").write_text(f"{stride}\n")
    device = tmp_path / "fb0"
    device.write_bytes(b"")
    return str(device), sysfs


def test_framebuffer_rgb565(tmp_path):
    device, sysfs = _fake_fb(tmp_path, 4, 2, 16)
    display = FramebufferDisplay(device, sysfs)
    assert display.size == (4, 2)
    display.show(Image.new("RGB", (8, 4), (255, 0, 0)))
    display.close()
    with open(device, "rb") as handle:
        data = np.frombuffer(handle.read(), "<u2")
    assert data.tolist() == [0xF800] * 8


def test_framebuffer_32_bit_with_row_padding(tmp_path):
    device, sysfs = _fake_fb(tmp_path, 2, 2, 32, stride=12)
    display = FramebufferDisplay(device, sysfs)
    display.show(Image.new("RGB", (2, 2), (10, 20, 30)))
    display.close()
    with open(device, "rb") as handle:
        raw = handle.read()
    assert len(raw) == 24
    assert list(raw[:12]) == [30, 20, 10, 255, 30, 20, 10, 255, 0, 0, 0, 0]


def test_framebuffer_errors_name_the_device(tmp_path):
    device, sysfs = _fake_fb(tmp_path, 4, 2, 16)
    os.unlink(device)
    with pytest.raises(DisplayError, match=f"no framebuffer at {device}"):
        FramebufferDisplay(device, sysfs)
    with pytest.raises(DisplayError, match="cannot read its geometry"):
        FramebufferDisplay(str(tmp_path / "fb7"), sysfs)
    (sysfs / "fb0" / "bits_per_pixel").write_text("8")
    with pytest.raises(DisplayError, match="8 bits per pixel is not supported"):
        FramebufferDisplay(device, sysfs)


def test_encode_24_bit():
    assert encode(Image.new("RGB", (1, 1), (1, 2, 3)), 24, 3) == bytes([3, 2, 1])


def test_kiosk_display_announces_frames():
    display = KioskDisplay((32, 18))
    assert display.wait(0, 0.01) == 0
    display.show(Image.new("RGB", (4, 4)))
    assert display.wait(0, 1.0) == 1 and display.frame.startswith(b"\xff\xd8")


def test_luma_without_the_package_is_a_clear_error(monkeypatch):
    for module in ("luma", "luma.core", "luma.core.interface"):  # absent, installed or not
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(DisplayError, match="needs luma.oled or luma.lcd"):
        LumaDisplay("ssd1306:i2c")


def test_open_display_by_name(tmp_path):
    settings = config.load(env={}, overrides={"display.kind": "file",
                                              "display.path": str(tmp_path / "f")}).display
    assert isinstance(open_display(settings), FileDisplay)
    settings.kind = "kiosk"
    assert isinstance(open_display(settings), KioskDisplay)
