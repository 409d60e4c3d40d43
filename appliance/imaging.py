"""Safe image decode and encode.

Only an allow-list of formats is opened, identified by their first bytes before Pillow sees
them; the pixel count is checked from the header before any pixel is decoded (so a pixel bomb
is refused in microseconds with memory flat); so is the memory the decode will hold (mode, bit
depth, the format's decoder), which a DecodeBudget bounds per image and in total. JPEGs are
decoded at a reduced DCT scale and other formats box-reduced towards the model's size, in
bands, so no full-size copy in another mode is ever made; EXIF orientation is applied; every
mode ends as 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings
from contextlib import nullcontext
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from appliance.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from appliance.text import one_line

if TYPE_CHECKING:
    from appliance.decodebudget import DecodeBudget

# (signature test, Pillow format name); the names are what 415 messages list.
_SIGNATURES = (
    (lambda b: b.startswith(b"\xff\xd8\xff"), "JPEG"),
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), "PNG"),
    (lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP", "WEBP"),
    (lambda b: b.startswith(b"BM"), "BMP"),
    (lambda b: b[:6] in (b"GIF87a", b"GIF89a"), "GIF"),
)
ACCEPTED = ("JPEG", "PNG", "WebP", "BMP", "GIF")
ACCEPTED_TEXT = ", ".join(ACCEPTED)

# Bytes Pillow stores per pixel: one for 1, L and P, two for 16-bit grey, four for the rest.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_MODE_NAMES = {"1": "1-bit", "L": "8-bit grey", "P": "palette", "I;16": "16-bit grey",
               "I;16B": "16-bit grey", "I;16L": "16-bit grey", "I;16N": "16-bit grey",
               "I": "32-bit grey", "F": "float grey", "LA": "grey+alpha", "PA": "palette+alpha",
               "RGB": "RGB", "RGBA": "RGBA", "CMYK": "CMYK"}
# Rows are converted a band at a time: the copies a conversion makes (the crop, RGBA, the
# white backdrop; 32-bit grey: at most 12 bytes a pixel, 16 counted) cost a band's pixels,
# not the image's; half a megapixel a band keeps the per-band overhead small.
BAND_PIXELS = 1 << 19
_BAND_BYTES = 16
# Reduction stops at twice the model's input each way, as Pillow's thumbnail does
# (reducing_gap=2): the task's antialiased resize does the rest, so quality is kept.
REDUCING_GAP = 2
# Images under this many pixels are converted whole: the copy costs at most 16 MB, and the
# task's one resize of the full picture is the most exact.
REDUCE_FROM = 1 << 22
# Decoders that hold more than the image (measured with Pillow 13): libwebp's own RGBA
# canvases (16 bytes a pixel in all), the BMP RLE decoder's bytearray and its copy.
_WEBP_BYTES = 12
_RLE_BYTES = 3
_BMP_RLE = (1, 2)
# Decoder state beside the pixels (zlib window, libjpeg buffers, row buffers): measured
# peaks ran up to 4 MB over the sum of the rest.
_FIXED_BYTES = 4 << 20
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps does).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def sniff(data: bytes) -> str:
    """Return the Pillow format name of `data` from its first bytes.

    Raises BadRequest for an empty body and UnsupportedMedia for anything off the allow-list.
    """
    if not data:
        raise BadRequest("the image is empty: send a JPEG, PNG, WebP, BMP or GIF file")
    for matches, name in _SIGNATURES:
        if matches(data[:16]):
            return name
    raise UnsupportedMedia(f"not an accepted image format: send one of {ACCEPTED_TEXT}")


def decode(data: bytes, max_pixels: int, hint: tuple[int, int] | None = None,
           budget: DecodeBudget | None = None) -> Image.Image:
    """Decode `data` into an upright 8-bit RGB image.

    `hint` (width, height) is the smallest size the caller needs: a JPEG decodes at the
    smallest DCT scale that still has that many pixels each way, and an image of
    REDUCE_FROM pixels or more is box-reduced to no less than twice that size; either way
    the result spans exactly the full picture. Raises UnsupportedMedia (415),
    PayloadTooLarge (413: pixel count over `max_pixels`, or more memory than `budget` allows
    one decode), Busy (503: `budget` stayed full) or BadRequest (400, truncated or corrupt).
    """
    return decode_sized(data, max_pixels, hint, budget)[0]


def decode_sized(data: bytes, max_pixels: int, hint: tuple[int, int] | None = None,
                 budget: DecodeBudget | None = None
                 ) -> tuple[Image.Image, tuple[int, int]]:
    """Like `decode`, and also the upright size of the full image, which a reduced decode
    does not have: boxes and outputs must be given in the sender's pixels.

    The bytes the decode will hold at its peak are worked out from the header and held in
    `budget` (when given) while the pixels exist, so decodes in flight stay within it.
    """
    fmt = sniff(data)
    image = _open(data, fmt, max_pixels)
    _check_pixels(image, max_pixels)
    early = _header_orientation(image, fmt)
    stored = image.size
    want = _stored_hint(hint, early)
    if want and fmt == "JPEG":
        image.draft("RGB", want)
    factor = reduction(image.size, want)
    cost = decode_cost(image, fmt, stored, factor, turns=early != 1)
    with budget.hold(cost, describe(image, fmt, stored)) if budget else nullcontext():
        _load(image, fmt)
        orientation = early if early is not None else _orientation(image)
        small = lean_rgb(image, factor)
        if small is not image:
            image.close()  # the full-size pixels go now, not when the caller lets go
        small = exact_extent(small, stored, _draft_scale(image, fmt) * factor)
        return _upright(small, orientation), _turned(stored, orientation)


def reduction(size: tuple[int, int], hint: tuple[int, int] | None) -> int:
    """The integer factor an image of `size` can be box-reduced by and still have at least
    REDUCING_GAP times `hint` (width, height) each way; 1 when there is no hint or the
    image is under REDUCE_FROM pixels (converting it whole costs little then). At most
    BAND_PIXELS / width, since a band is at least `factor` rows: the reduced image is then
    larger than needed (still small) rather than a band large."""
    if not hint or size[0] * size[1] < REDUCE_FROM:
        return 1
    across = size[0] // (REDUCING_GAP * max(1, hint[0]))
    down = size[1] // (REDUCING_GAP * max(1, hint[1]))
    return max(1, min(across, down, BAND_PIXELS // max(1, size[0])))


def decode_cost(image: Image.Image, fmt: str, stored: tuple[int, int], factor: int,
                turns: bool = False) -> int:
    """Bytes a decode of the opened (not yet loaded) `image` holds at its peak: the decoded
    pixels in their own mode, what the format's decoder keeps beside them, one band of the
    conversion to RGB and the reduced result (twice when `turns`: it is turned upright).

    `stored` is the size in the header (a JPEG draft makes `image.size` smaller)."""
    width, height = image.size
    held = width * height * pixel_bytes(image.mode) + _decoder_bytes(image, fmt, stored)
    out = -(-width // factor) * -(-height // factor) * 4
    # Copies of the result: the conversion's (none for RGB kept as decoded), the extent's
    # resampling when the scale does not divide the size, the upright turn.
    scale = _draft_scale(image, fmt) * factor
    copies = int(image.mode != "RGB" or factor > 1) + int(turns) + int(
        stored[0] % scale != 0 or stored[1] % scale != 0)
    band = min(band_rows(width, factor), height) * width * _BAND_BYTES
    if image.mode == "RGB":
        band = 0  # reduced whole, no conversion
    return _FIXED_BYTES + held + band + out * copies


def pixel_bytes(mode: str) -> int:
    """Bytes Pillow stores per pixel of `mode` (every multi-band mode takes 4)."""
    return _PIXEL_BYTES.get(mode, 4)


def describe(image: Image.Image, fmt: str, stored: tuple[int, int]) -> str:
    """'7000x7000 16-bit grey PNG': what an error message calls the image."""
    return f"{stored[0]}x{stored[1]} {_MODE_NAMES.get(image.mode, image.mode)} {fmt}"


def band_rows(width: int, factor: int) -> int:
    """Rows converted at a time: a multiple of `factor` (so bands reduce exactly as the
    whole image would) holding about BAND_PIXELS pixels."""
    rows = max(1, BAND_PIXELS // max(1, width))
    return max(factor, rows // factor * factor)


def lean_rgb(image: Image.Image, factor: int) -> Image.Image:
    """`image` (loaded) as 8-bit RGB, box-reduced by `factor`, converting one band of rows
    at a time so that no full-size copy in another mode ever exists."""
    if image.mode == "RGB":
        return image.reduce(factor) if factor > 1 else image
    width, height = image.size
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    top = _deep_top(image)
    rows = band_rows(width, factor)
    for y in range(0, height, rows):
        band = image.crop((0, y, width, min(height, y + rows)))
        out.paste(_band_rgb(band, top, factor), (0, y // factor))
    return out


def _band_rgb(band: Image.Image, top: float | None, factor: int) -> Image.Image:
    if top is not None:
        # Deep grey is reduced in 32 bits first (Pillow cannot reduce 16-bit modes), so
        # the scaling to 8 bits runs over the reduced pixels only.
        wide = band.convert("I") if band.mode.startswith("I;16") else band
        return _deep_to_rgb(wide.reduce(factor) if factor > 1 else wide, top)
    # Anything with alpha is laid over white band by band, before the reduction: exact
    # whatever the reduction does with alpha, and a band's backdrop costs little.
    rgb = _to_rgb(band, None)
    return rgb.reduce(factor) if factor > 1 else rgb


def exact_extent(image: Image.Image, stored: tuple[int, int], scale: int) -> Image.Image:
    """`image`, decoded or reduced by `scale` from `stored` pixels, resampled so that its
    extent is exactly the stored picture's.

    A reduced pixel covers `scale` stored pixels, the last ones fewer when `scale` does not
    divide the size (a JPEG DCT scale and Image.reduce both round up): mapped back by the
    ratio of sizes, boxes would then drift by up to `scale` pixels towards the far edges.
    """
    if stored[0] % scale == 0 and stored[1] % scale == 0:
        return image
    extent = (stored[0] / scale, stored[1] / scale)
    size = (max(1, round(extent[0])), max(1, round(extent[1])))
    return image.resize(size, Image.BILINEAR, box=(0, 0, *extent))


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers (not DHT, JPG, DAC)


def _draft_scale(image: Image.Image, fmt: str) -> int:
    # The DCT scale a JPEG draft chose (Pillow keeps it in decoderconfig); 1 otherwise.
    config = getattr(image, "decoderconfig", None) if fmt == "JPEG" else None
    return int(config[0]) if config else 1


def _decoder_bytes(image: Image.Image, fmt: str, stored: tuple[int, int]) -> int:
    pixels = image.size[0] * image.size[1]
    if fmt == "WEBP":
        return pixels * _WEBP_BYTES
    if fmt == "BMP" and image.info.get("compression") in _BMP_RLE:
        return pixels * _RLE_BYTES
    if fmt == "JPEG" and (image.info.get("progressive") or _multi_scan(image)):
        return _coefficient_bytes(getattr(image, "layer", None) or [(0, 1, 1, 0)] * 3, stored)
    return 0


def _multi_scan(image: Image.Image) -> bool:
    """True when a baseline JPEG's first scan leaves out a component: libjpeg then keeps every
    coefficient of the image until the last scan, as for a progressive one (a 781 KB file of
    7071x7071 took 400 MB past a budget that did not count this)."""
    data = image.fp.getvalue() if hasattr(image.fp, "getvalue") else b""
    at, components = 2, 0
    while at + 10 <= len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if marker in _SOF and components == 0:
            components = data[at + 9]
        elif marker == 0xDA:  # the first scan
            return data[at + 4] < components
        at += 2 + length
    return False


def _coefficient_bytes(layers: list[tuple], stored: tuple[int, int]) -> int:
    # A progressive JPEG keeps every component's 16-bit DCT coefficients, 8x8 blocks at the
    # full size whatever the draft scale, until the last scan is in.
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    blocks = sum(-(-stored[0] * layer[1] // (8 * h_max)) * -(-stored[1] * layer[2] // (8 * v_max))
                 for layer in layers)
    return blocks * 64 * 2


def _header_orientation(image: Image.Image, fmt: str) -> int | None:
    """The EXIF orientation known before any pixel is decoded; None when it can only be
    known after (a PNG's eXIf chunk may follow its pixels, and Pillow's getexif would decode
    the whole image, outside any budget, to find it)."""
    if fmt == "PNG" and "exif" not in image.info:
        return None
    return _orientation(image)


def _stored_hint(hint: tuple[int, int] | None,
                 orientation: int | None) -> tuple[int, int] | None:
    """`hint` in the stored image's axes; the longer side both ways while the orientation is
    not known yet, so that the upright result keeps the hint whichever way it turns."""
    if not hint:
        return None
    if orientation is None:
        side = max(hint)
        return side, side
    return _turned(hint, orientation)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _turned(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    # Orientations 5-8 swap width and height between the stored and the upright picture.
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else (size[0], size[1])


def _open(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own pixel check below is stricter; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        # Pillow's own bomb check fired first (its limit is above ours): same answer.
        raise PayloadTooLarge(f"the image is too large ({exc}); this box accepts up to "
                              f"{max_pixels} pixels: scale it down first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"the {fmt} image is truncated or corrupt ({exc}): "
                         "send the whole file again or re-save it") from exc


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; this box accepts "
            f"up to {max_pixels}: scale it down first")
    if width == 0 or height == 0:
        raise BadRequest(f"the image has no pixels ({width}x{height})")


def _load(image: Image.Image, fmt: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"the {fmt} image is truncated or corrupt ({exc}): "
                         "send the whole file again") from exc


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is laid over white."""
    return _to_rgb(image, _deep_top(image))


def _to_rgb(image: Image.Image, top: float | None) -> Image.Image:
    if image.mode == "RGB":
        return image
    if top is not None:
        return _deep_to_rgb(image, top)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # A paste through its own alpha is the same as alpha_composite over opaque white,
        # in one pass and without the RGBA backdrop.
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, (0, 0), rgba)
        return white
    return image.convert("RGB")


def _deep_top(image: Image.Image) -> float | None:
    """The value that maps to white for 16/32-bit grey (the whole image's, not a band's);
    None for every other mode."""
    if image.mode.startswith("I;16"):
        return 65535.0
    if image.mode not in ("I", "F"):
        return None
    return 65535.0 if image.getextrema()[1] > 255 else 255.0


def _deep_to_rgb(image: Image.Image, top: float) -> Image.Image:
    # Scaled by the format's range rather than clipped at 255; integers stay integers
    # (v // 257 is exactly the old float v * 255 / 65535 truncated, without 8 bytes a pixel).
    pixels = np.asarray(image)
    if pixels.dtype.kind == "f":
        grey = np.clip(pixels * np.float32(255.0 / top), 0, 255)
    elif top > 255:
        grey = np.clip(pixels, 0, 65535) // 257
    else:
        grey = np.clip(pixels, 0, 255)
    return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")


# JPEG's comment marker holds at most 65,533 bytes (Pillow refuses more). The credit gets
# that much in either format, shared equally between its texts, so a long author can never
# push the licence out, a result carries the same credit as PNG or JPEG, and no result grows
# by more than 64 KB for it.
MAX_CREDIT_BYTES = 65_533
MAX_CREDIT_TEXTS = 8  # an attribution has three (author, source, licence)
SHORTENED = " … (shortened: the whole text is in the model's manifest)"


def encode(image: Image.Image, fmt: str,
           attribution: dict[str, str] | None = None) -> tuple[bytes, str]:
    """Encode `image` as 'png' or 'jpeg'; returns (bytes, MIME type).

    The model's attribution travels inside the file (PNG iTXt chunks, a JPEG comment), so
    authors and licences stay with their results wherever the file goes. Any text will do:
    it is cleaned of control characters and shortened to fit MAX_CREDIT_BYTES of UTF-8, so a
    result never fails over its metadata.
    """
    buffer = io.BytesIO()
    credit = _credit(attribution or {})
    if fmt == "jpeg":
        comment = b"; ".join(key.encode("ascii") + b": " + text for key, text in credit)
        image.convert("RGB").save(buffer, "JPEG", quality=90, comment=comment)
        return buffer.getvalue(), "image/jpeg"
    info = PngImagePlugin.PngInfo()
    for key, text in credit:
        info.add_itxt(key.capitalize(), text)
    image.save(buffer, "PNG", compress_level=3, pnginfo=info)
    return buffer.getvalue(), "image/png"


def _credit(attribution: dict[str, str]) -> list[tuple[str, bytes]]:
    """(key, UTF-8 text) for each non-empty entry, cleaned and shortened to an equal share of
    MAX_CREDIT_BYTES; keys keep what a PNG keyword allows (ASCII letters, digits, spaces)."""
    pairs = []
    for key, value in list(attribution.items())[:MAX_CREDIT_TEXTS]:
        name = "".join(c for c in str(key)[:79] if c.isascii() and (c.isalnum() or c == " "))
        if name.strip() and value:
            pairs.append((name.strip(), str(value)))
    room = MAX_CREDIT_BYTES - sum(len(name) + len(": ; ") for name, _ in pairs)
    share = room // max(1, len(pairs))
    # More characters than `share` are more bytes: cut before cleaning, which costs per one.
    return [(name, _utf8(one_line(text[:share + 1]), share)) for name, text in pairs]


def _utf8(text: str, limit: int) -> bytes:
    """`text` as UTF-8, shortened to `limit` bytes (whole characters, then SHORTENED)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return data
    note = SHORTENED.encode("utf-8")
    return data[:limit - len(note)].decode("utf-8", "ignore").encode("utf-8") + note
