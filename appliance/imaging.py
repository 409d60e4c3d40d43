"""Safe image decode and encode.

Only an allow-list of formats is opened, identified by their first bytes before Pillow sees
them; the pixel count is checked from the header before any pixel is decoded (so a pixel bomb
is refused in microseconds with memory flat); JPEGs are decoded at a reduced scale when the
model needs far fewer pixels; EXIF orientation is applied; every mode ends as 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from appliance.errors import BadRequest, PayloadTooLarge, UnsupportedMedia

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


def decode(data: bytes, max_pixels: int, hint: tuple[int, int] | None = None) -> Image.Image:
    """Decode `data` into an upright 8-bit RGB image.

    `hint` (width, height) lets a JPEG decode at the smallest DCT scale that still has at least
    that many pixels each way. Raises UnsupportedMedia (415), PayloadTooLarge (413, pixel count
    over `max_pixels`) or BadRequest (400, truncated or corrupt data).
    """
    return decode_sized(data, max_pixels, hint)[0]


def decode_sized(data: bytes, max_pixels: int,
                 hint: tuple[int, int] | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Like `decode`, and also the upright size of the full image, which a reduced-scale
    decode does not have: boxes and outputs must be given in the sender's pixels."""
    fmt = sniff(data)
    image = _open(data, fmt, max_pixels)
    _check_pixels(image, max_pixels)
    full = _upright_size(image)
    if hint and fmt == "JPEG":
        image.draft("RGB", hint)
    _load(image, fmt)
    return to_rgb(_upright(image)), full


def _upright_size(image: Image.Image) -> tuple[int, int]:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        orientation = 1
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


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


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        # A broken EXIF block must not lose the picture: serve it as stored.
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is laid over white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _deep_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _deep_to_rgb(image: Image.Image) -> Image.Image:
    # 16-bit and 32-bit grey: scale by the format's range rather than clipping at 255.
    pixels = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
    grey = np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def encode(image: Image.Image, fmt: str,
           attribution: dict[str, str] | None = None) -> tuple[bytes, str]:
    """Encode `image` as 'png' or 'jpeg'; returns (bytes, MIME type).

    The model's attribution travels inside the file (PNG text chunks, a JPEG comment), so
    authors and licences stay with their results wherever the file goes.
    """
    buffer = io.BytesIO()
    credit = attribution or {}
    if fmt == "jpeg":
        comment = "; ".join(f"{k}: {v}" for k, v in credit.items() if v)
        image.convert("RGB").save(buffer, "JPEG", quality=90, comment=comment.encode())
        return buffer.getvalue(), "image/jpeg"
    info = PngImagePlugin.PngInfo()
    for key, value in credit.items():
        if value:
            info.add_itxt(key.capitalize(), value)
    image.save(buffer, "PNG", compress_level=3, pnginfo=info)
    return buffer.getvalue(), "image/png"
