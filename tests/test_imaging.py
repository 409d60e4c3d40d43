"""HARDENING rows 6-11: what the decoder does with bad, huge and unusual images."""

import io
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

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


# Row 29: the memory a decode holds is worked out from the header, kept small, and bounded.

def _deep_png(size: tuple[int, int], value: int = 40000) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size[::-1], value, np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()


def _chunks(data: bytes) -> list[bytes]:
    found, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        found.append(data[at:at + 12 + length])
        at += 12 + length
    return found


def _exif_after_pixels(data: bytes) -> bytes:
    """The PNG with its eXIf chunk moved behind IDAT, where the spec also allows it."""
    chunks = _chunks(data)
    exif = next(c for c in chunks if c[4:8] == b"eXIf")
    rest = [c for c in chunks if c is not exif]
    return data[:8] + b"".join(rest[:-1]) + exif + rest[-1]


def _oriented_6(upright: Image.Image, fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, fmt, exif=exif)
    return buffer.getvalue()


def _top_band_red(size: tuple[int, int]) -> Image.Image:
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[: size[1] // 4, :, 0] = 255  # a red band across the top quarter
    return Image.fromarray(pixels)


def test_row29_sixteen_bit_grey_is_reduced_scaled_and_keeps_its_full_size():
    image, full = imaging.decode_sized(_deep_png((3000, 2000)), LIMIT, hint=(128, 128))
    assert full == (3000, 2000)
    assert image.mode == "RGB"
    assert min(image.size) >= 256 and max(image.size) < 3000
    assert tuple(np.asarray(image)[10, 10]) == (155, 155, 155)  # 40000 // 257, not clipped


@pytest.mark.parametrize(("fmt", "move_exif"), [("PNG", False), ("PNG", True),
                                               ("JPEG", False)])
def test_row29_reduced_upright_keeps_the_hint_each_way(fmt, move_exif):
    data = _oriented_6(_top_band_red((3000, 2000)), fmt)
    if move_exif:
        data = _exif_after_pixels(data)
    image, full = imaging.decode_sized(data, LIMIT, hint=(224, 128))
    assert full == (3000, 2000)
    # At least the hint each way once upright (a PNG twice it: the reducing gap; a JPEG
    # the smallest DCT scale above it), so the task's own resize has the pixels it needs.
    assert image.size[0] >= (224 if fmt == "JPEG" else 448)
    assert image.size[1] >= (128 if fmt == "JPEG" else 256)
    assert image.size[0] < 3000
    pixels = np.asarray(image).astype(int)
    assert pixels[5, image.size[0] // 2, 0] > 200  # the red band is at the top: upright
    assert pixels[-5, image.size[0] // 2, 0] < 50


def test_row29_reduced_alpha_is_seen_over_white():
    # Opaque red and fully transparent black pixels in a checkerboard: seen over white, half
    # red and half white, (255, 128, 128); averaging colours without their alpha weight
    # would give (191, 128, 128).
    pixels = np.zeros((2048, 2048, 4), np.uint8)
    red = (np.indices((2048, 2048)).sum(axis=0) % 2) == 0
    pixels[red] = (255, 0, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG")
    image = imaging.decode(buffer.getvalue(), LIMIT, hint=(64, 64))
    assert image.size == (128, 128)
    assert np.abs(np.asarray(image)[64, 64].astype(int) - (255, 128, 128)).max() <= 1


def test_row29_cost_comes_from_mode_and_depth_not_only_pixels():
    def cost(data: bytes) -> int:
        fmt = imaging.sniff(data)
        image = Image.open(io.BytesIO(data), formats=[fmt])
        return imaging.decode_cost(image, fmt, image.size, imaging.reduction(image.size,
                                                                          (128, 128)))
    size = (4000, 3000)
    grey = cost(image_bytes(size=size, fmt="PNG", mode="L"))
    deep = cost(_deep_png(size))
    rgba = cost(image_bytes(size=size, fmt="PNG", mode="RGBA"))
    pixels = size[0] * size[1]
    assert deep - grey == pixels  # two bytes a pixel against one
    assert rgba - grey == 3 * pixels
    webp = cost(image_bytes(size=(2000, 1500), fmt="WEBP", lossless=True))
    assert webp >= 16 * 2000 * 1500  # libwebp's own canvases beside Pillow's


def test_row29_over_the_per_decode_budget_is_413_before_any_pixel():
    from appliance.decodebudget import MB, DecodeBudget

    data = _deep_png((3000, 2000))
    before = Image.core.get_stats()["new_count"]
    with pytest.raises(PayloadTooLarge, match=(
            r"decoding this 3000x2000 16-bit grey PNG would take 25 MB of memory; this box "
            r"decodes up to 4 MB per image: save it as an 8-bit RGB JPEG or scale it down")):
        imaging.decode(data, LIMIT, (128, 128), DecodeBudget(8 * MB, 4 * MB))
    assert Image.core.get_stats()["new_count"] == before, "pixels were decoded"


@pytest.mark.parametrize(("fmt", "mode", "save"), [
    ("JPEG", "RGB", {"progressive": True}), ("JPEG", "CMYK", {}), ("WEBP", "RGBA", {}),
    ("GIF", "P", {}), ("BMP", "RGB", {}), ("PNG", "LA", {}),
])
def test_row29_every_format_is_costed_before_any_pixel(fmt, mode, save):
    from appliance.decodebudget import DecodeBudget

    data = image_bytes(size=(64, 48), fmt=fmt, mode=mode, **save)
    before = Image.core.get_stats()["new_count"]
    with pytest.raises(PayloadTooLarge, match=r"decoding this 64x48 .* would take .* MB of "
                                              r"memory; this box decodes up to 1 MB"):
        imaging.decode(data, LIMIT, (32, 32), DecodeBudget(1, 1))
    assert Image.core.get_stats()["new_count"] == before, "pixels were decoded"


def test_row29_budget_full_is_503_before_any_pixel_and_frees_after():
    from appliance.decodebudget import MB, DecodeBudget
    from appliance.errors import Busy

    budget = DecodeBudget(64 * MB, 64 * MB, wait_s=0.05)
    data = image_bytes(size=(3000, 2000), fmt="PNG", mode="RGBA")  # no EXIF in the header
    with budget.hold(60 * MB):
        before = Image.core.get_stats()["new_count"]
        with pytest.raises(Busy, match="decoding other images"):
            imaging.decode(data, LIMIT, (128, 128), budget)
        assert Image.core.get_stats()["new_count"] == before, "pixels were decoded"
    assert imaging.decode(data, LIMIT, (128, 128), budget).mode == "RGB"
    assert budget.in_flight == 0


_PEAK_SCRIPT = """
import io, sys
from PIL import Image
from appliance import imaging
data = open(sys.argv[1], "rb").read()
hint = (128, 128) if sys.argv[2] == "hint" else None
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
fmt = imaging.sniff(data)
image = Image.open(io.BytesIO(data), formats=[fmt])
stored = image.size
if hint and fmt == "JPEG":
    image.draft("RGB", hint)
cost = imaging.decode_cost(image, fmt, stored, imaging.reduction(image.size, hint))
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # VmHWM back to VmRSS
start = status("VmRSS")
imaging.decode(data, 10**9, hint)
print(cost, status("VmHWM") - start)
"""


def _progressive_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), np.uint8)).resize((4000, 3000))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", progressive=True, quality=80)
    return buffer.getvalue()


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.parametrize(("make", "hint"), [
    (lambda: _deep_png((4000, 3000)), "hint"),
    (lambda: image_bytes(size=(4000, 3000), fmt="PNG", mode="RGBA"), "hint"),
    (lambda: image_bytes(size=(4000, 3000), fmt="PNG", mode="LA"), "hint"),
    (lambda: image_bytes(size=(4000, 3000), fmt="PNG", mode="RGB"), "none"),
    (lambda: image_bytes(size=(4000, 3000), fmt="GIF", mode="P"), "hint"),
    (lambda: image_bytes(size=(2000, 1500), fmt="WEBP", lossless=True), "hint"),
    (_progressive_jpeg, "hint"),
], ids=["I;16 PNG", "RGBA PNG", "LA PNG", "RGB PNG no hint", "GIF", "WebP", "progressive JPEG"])
def test_row29_cost_covers_the_measured_peak(make, hint, tmp_path):
    path = tmp_path / "image"
    path.write_bytes(make())
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path), hint],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    cost, peak = map(int, done.stdout.split())
    assert peak <= cost, f"measured {peak >> 20} MB, worked out {cost >> 20} MB"
    assert cost <= 1.2 * peak + (8 << 20), f"worked out {cost >> 20} MB for {peak >> 20} MB"


# -- row 36: a result never fails over its model's attribution -----------------------------

def _credit_read_back(data: bytes) -> tuple[str, dict]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format, dict(image.info)


def test_row36_encode_carries_non_latin_attribution():
    credit = {"author": "张伟 and Zoë", "license": "CC BY-SA 4.0 — see LICENSE",
              "source": "https://example.org/模型"}
    png, _ = imaging.encode(Image.new("RGB", (8, 8)), "png", credit)
    assert Image.open(io.BytesIO(png)).text == {
        "Author": "张伟 and Zoë", "License": "CC BY-SA 4.0 — see LICENSE",
        "Source": "https://example.org/模型"}
    jpeg, _ = imaging.encode(Image.new("RGB", (8, 8)), "jpeg", credit)
    assert _credit_read_back(jpeg)[1]["comment"].decode("utf-8") == (
        "author: 张伟 and Zoë; license: CC BY-SA 4.0 — see LICENSE; "
        "source: https://example.org/模型")


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_row36_a_200kb_author_is_shortened_and_says_so(fmt):
    credit = {"author": "张" * 200_000, "license": "MIT"}  # 600 KB of UTF-8
    data, _ = imaging.encode(Image.new("RGB", (8, 8)), fmt, credit)
    kind, info = _credit_read_back(data)
    if kind == "JPEG":
        comment = info["comment"].decode("utf-8")
        assert len(info["comment"]) <= imaging.MAX_CREDIT_BYTES
        author, licence = comment.removeprefix("author: ").split("; license: ")
    else:
        author, licence = info["Author"], info["License"]
        assert len(author.encode("utf-8")) <= imaging.MAX_CREDIT_BYTES
    assert licence == "MIT"  # a long author never pushes the licence out
    assert author.endswith(imaging.SHORTENED)
    assert set(author.removesuffix(imaging.SHORTENED)) == {"张"}
    assert len(author) > 10_000


def test_row36_jpeg_comment_near_the_limit_is_kept_whole():
    author = "a" * (imaging.MAX_CREDIT_BYTES - 20)
    data, _ = imaging.encode(Image.new("RGB", (8, 8)), "jpeg", {"author": author})
    assert _credit_read_back(data)[1]["comment"] == f"author: {author}".encode()


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_row36_control_characters_and_lone_surrogates_never_fail(fmt):
    credit = {"author": "Ada\nLovelace\r\x00\x1b[31m", "license": "x\ud800y", "source": ""}
    data, _ = imaging.encode(Image.new("RGB", (8, 8)), fmt, credit)
    kind, info = _credit_read_back(data)
    if kind == "JPEG":
        assert info["comment"].decode("utf-8") == "author: Ada Lovelace   [31m; license: x\ufffdy"
    else:
        assert (info["Author"], info["License"]) == ("Ada Lovelace   [31m", "x\ufffdy")
        assert "Source" not in info  # empty texts are left out


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_row36_every_kind_of_character_encodes(fmt):
    rng = np.random.default_rng(36)
    points = np.concatenate([rng.integers(0, 0x110000, 3000), np.arange(0, 0x300)])
    text = "".join(map(chr, points))
    data, _ = imaging.encode(Image.new("RGB", (8, 8)), fmt, {"author": text, text: text})
    assert _credit_read_back(data)[0] == fmt.upper()


def test_row29_reduced_image_spans_exactly_the_full_picture():
    # 4099 and 2049 are not multiples of the factor (8): Image.reduce rounds up, so its last
    # column stands for fewer pixels than the others. Boxes are mapped back by the ratio of
    # sizes, which is exact only when the reduced image spans exactly the full picture.
    pixels = np.zeros((2049, 4099), np.uint8)
    pixels[:, 3000:] = 255  # an edge far across, where any drift is largest
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    image, full = imaging.decode_sized(buffer.getvalue(), LIMIT, hint=(128, 128))
    assert full == (4099, 2049) and image.size[0] < 1000
    profile = np.asarray(image)[:, :, 0].mean(axis=0)
    after = int(np.argmax(profile >= 127.5))
    edge = after - (profile[after] - 127.5) / (profile[after] - profile[after - 1])
    # The 50% crossing sits half a pixel before the edge's position in pixel centres.
    assert abs(edge + 0.5 - 3000 * image.size[0] / 4099) < 0.15


def _multiscan_jpeg(width: int, height: int, components: int = 3) -> bytes:
    """A baseline JPEG whose components come one per scan (all-zero blocks: 2 bits each), so
    libjpeg must keep the whole image's coefficients: tiny file, big decode."""
    import struct

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    counts = bytes([1] + [0] * 15)
    out = b"\xff\xd8" + segment(0xFFDB, b"\x00" + bytes([1] * 64))
    out += segment(0xFFC0, struct.pack(">BHHB", 8, height, width, components)
                   + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components)))
    out += segment(0xFFC4, b"\x00" + counts + b"\x00" + b"\x10" + counts + b"\x00")
    bits = -(-width // 8) * -(-height // 8) * 2
    scan = b"\x00" * (bits // 8) + (bytes([(1 << (8 - bits % 8)) - 1]) if bits % 8 else b"")
    for i in range(components):
        out += segment(0xFFDA, bytes([1, i + 1, 0x00, 0, 63, 0])) + scan
    return out + b"\xff\xd9"


def test_row29_a_baseline_jpeg_in_several_scans_is_costed_as_it_decodes():
    from appliance.decodebudget import DecodeBudget

    data = _multiscan_jpeg(7000, 7000)
    assert len(data) < 700_000
    with pytest.raises(PayloadTooLarge, match="would take 2[89]\\d MB of memory"):
        imaging.decode(data, 50_000_000, (224, 224), DecodeBudget(512 << 20, 256 << 20))
    small = _multiscan_jpeg(64, 48)
    assert imaging.decode(small, 50_000_000, (32, 32)).size[0] >= 32
