"""HARDENING rows 6-11: what the decoder does with bad, huge and unusual images."""

import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from appliance import imaging
from appliance.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from tests.conftest import image_bytes

LIMIT = 50_000_000


def test_row6_random_bytes_415_names_formats():
    rng = np.random.default_rng(0)
    with pytest.raises(UnsupportedMedia, match="send one of JPEG, PNG, WebP, BMP, GIF"):
        imaging.decode(rng.bytes(4096), LIMIT)


def test_empty_body_400():
    with pytest.raises(BadRequest, match="the image is empty"):
        imaging.decode(b"", LIMIT)


def test_row7_truncated_jpeg_400():
    data = image_bytes(size=(640, 480))
    with pytest.raises(BadRequest, match="JPEG image is truncated or corrupt"):
        imaging.decode(data[: len(data) // 2], LIMIT)


def test_corrupt_png_400():
    data = bytearray(image_bytes(fmt="PNG"))
    data[40:60] = b"\x00" * 20
    with pytest.raises(BadRequest, match="PNG image"):
        imaging.decode(bytes(data), LIMIT)


def _png_claiming(width: int, height: int) -> bytes:
    data = bytearray(image_bytes(fmt="PNG", size=(4, 4)))
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(image_bytes(size=(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("make", [_png_claiming, _jpeg_claiming])
def test_row8_pixel_bomb_413_fast_and_flat(make):
    data = make(20000, 20000)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="400000000 pixels.*this box accepts up to 50000000"):
        imaging.decode(data, LIMIT)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 5 * 1024 * 1024


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "ICO", "TGA", "PCX"])
def test_row9_formats_outside_the_allow_list_415(fmt):
    with pytest.raises(UnsupportedMedia, match="not an accepted image format"):
        imaging.decode(image_bytes(fmt=fmt, size=(16, 16)), LIMIT)


@pytest.mark.parametrize("header", [b"8BPS\x00\x01", b"SIMPLE  =                    T"])
def test_row9_psd_and_fits_415(header):
    with pytest.raises(UnsupportedMedia):
        imaging.decode(header + b"\x00" * 64, LIMIT)


def _asymmetric() -> Image.Image:
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:10, :, 0] = 255  # a red band across the top
    pixels[:, :10, 2] = 255  # a blue band down the left
    return Image.fromarray(pixels)


def test_row10_exif_orientation_6_matches_upright():
    upright = _asymmetric()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera writes for 6
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif)
    decoded = imaging.decode(buffer.getvalue(), LIMIT)
    assert decoded.size == upright.size
    assert np.array_equal(np.asarray(decoded), np.asarray(upright))


@pytest.mark.parametrize(("mode", "fmt"), [
    ("CMYK", "JPEG"), ("P", "PNG"), ("P", "GIF"), ("RGBA", "PNG"), ("LA", "PNG"),
    ("L", "JPEG"), ("1", "BMP"), ("RGBA", "WEBP"), ("I;16", "PNG"),
])
def test_row11_modes_convert_to_rgb(mode, fmt):
    data = image_bytes(color=(200, 30, 30), fmt=fmt, mode=mode, size=(32, 24))
    image = imaging.decode(data, LIMIT)
    assert image.mode == "RGB"
    assert image.size == (32, 24)


def test_row11_sixteen_bit_grey_scales_not_clips():
    deep = Image.fromarray(np.full((8, 8), 32768, np.uint16))
    buffer = io.BytesIO()
    deep.save(buffer, "PNG")
    pixel = np.asarray(imaging.decode(buffer.getvalue(), LIMIT))[0, 0]
    assert 120 <= pixel[0] <= 135


def test_transparency_lies_on_white():
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    buffer = io.BytesIO()
    clear.save(buffer, "PNG")
    assert tuple(np.asarray(imaging.decode(buffer.getvalue(), LIMIT))[0, 0]) == (255, 255, 255)


def test_draft_decodes_big_jpegs_smaller_but_not_below_hint():
    data = image_bytes(size=(4000, 3000))
    image = imaging.decode(data, LIMIT, hint=(224, 224))
    assert image.size[0] < 4000
    assert min(image.size) >= 224
    assert imaging.decode(data, LIMIT).size == (4000, 3000)


def test_encode_carries_attribution():
    image = Image.new("RGB", (8, 8))
    credit = {"author": "Ada", "license": "MIT"}
    data, mime = imaging.encode(image, "png", credit)
    assert mime == "image/png"
    assert Image.open(io.BytesIO(data)).text == {"Author": "Ada", "License": "MIT"}
    data, mime = imaging.encode(image, "jpeg", credit)
    assert mime == "image/jpeg"
    assert Image.open(io.BytesIO(data)).info["comment"] == b"author: Ada; license: MIT"
