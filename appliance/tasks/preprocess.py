"""Turn an RGB image into a model's input tensor, exactly as the manifest says.

Pure functions over PIL images and numpy arrays; the converter calibrates with this same code
so that a quantized model sees at build time what it will see on the box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from appliance.tasks.scratch import floats

if TYPE_CHECKING:
    from appliance.bundle import InputSpec


@dataclass(frozen=True)
class Geometry:
    """How the original image maps onto the model's input: x_model = x_in * scale + pad."""

    source_size: tuple[int, int]
    scale_x: float
    scale_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0


def for_source(geometry: Geometry, full_size: tuple[int, int]) -> Geometry:
    """The geometry against the full-size image when the decoder gave a reduced-scale one."""
    if geometry.source_size == full_size:
        return geometry
    rx = geometry.source_size[0] / full_size[0]
    ry = geometry.source_size[1] / full_size[1]
    return Geometry(full_size, geometry.scale_x * rx, geometry.scale_y * ry, geometry.pad_x,
                    geometry.pad_y)


def decode_hint(spec: InputSpec) -> tuple[int, int]:
    """The smallest (width, height) the decoder must keep for this input."""
    height, width = spec.size
    return width, height


def resize(image: Image.Image, spec: InputSpec) -> tuple[Image.Image, Geometry]:
    """Resize `image` to the input size with the manifest's resize mode."""
    height, width = spec.size
    if spec.resize == "stretch":
        return _stretch(image, width, height)
    if spec.resize == "shorter-side-center-crop":
        return _center_crop(image, width, height)
    return _letterbox(image, width, height)


def to_tensor(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """Normalize and lay out a resized image as a batch of one: (x*scale - mean) / std."""
    pixels = np.asarray(image)
    if spec.dtype != "uint8" and spec.layout == "NCHW":
        return _planar(pixels, spec)[np.newaxis]
    if spec.color == "BGR":
        pixels = pixels[..., ::-1]
    if spec.dtype == "uint8":
        tensor = np.ascontiguousarray(pixels, dtype=np.uint8)
    else:
        tensor = _normalize(pixels, spec)
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor)[np.newaxis]


def prepare(image: Image.Image, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
    """Resize and normalize `image` for the model; returns the tensor and its geometry."""
    resized, geometry = resize(image, spec)
    return to_tensor(resized, spec), geometry


def _affine(spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """(gain, offset) per channel so that x * gain + offset == (x * scale - mean) / std."""
    std = np.asarray(spec.std, dtype=np.float32)
    return np.float32(spec.scale) / std, -np.asarray(spec.mean, dtype=np.float32) / std


def _planar(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    # Straight from the interleaved pixels into each float plane: a multiply and an add per
    # plane, no float HWC copy and no transpose pass.
    gain, offset = _affine(spec)
    order = (2, 1, 0) if spec.color == "BGR" else (0, 1, 2)
    out = floats((3, *pixels.shape[:2]))
    # mean and std are in the model's channel order, as in the interleaved path.
    for plane, channel in enumerate(order):
        np.multiply(pixels[..., channel], gain[plane], out=out[plane])
        out[plane] += offset[plane]
    return out


def _normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    # One multiply and one add over the image instead of three passes.
    gain, offset = _affine(spec)
    out = floats(pixels.shape)
    np.multiply(pixels, gain, out=out)
    out += offset
    return out


def _stretch(image: Image.Image, width: int, height: int) -> tuple[Image.Image, Geometry]:
    source = image.size
    resized = image.resize((width, height), Image.BILINEAR) if source != (width, height) \
        else image
    return resized, Geometry(source, width / source[0], height / source[1])


def _center_crop(image: Image.Image, width: int, height: int) -> tuple[Image.Image, Geometry]:
    source = image.size
    scale = max(width / source[0], height / source[1])
    # Crop in source pixels first, then resize once: one resampling pass, no wasted pixels.
    crop_w, crop_h = width / scale, height / scale
    # max(0, ...) and min(...): float rounding must never push the box off the image.
    left, top = max(0.0, (source[0] - crop_w) / 2), max(0.0, (source[1] - crop_h) / 2)
    box = (left, top, min(source[0], left + crop_w), min(source[1], top + crop_h))
    resized = image.resize((width, height), Image.BILINEAR, box=box)
    return resized, Geometry(source, scale, scale, -left * scale, -top * scale)


def _letterbox(image: Image.Image, width: int, height: int) -> tuple[Image.Image, Geometry]:
    source = image.size
    scale = min(width / source[0], height / source[1])
    inner = (max(1, round(source[0] * scale)), max(1, round(source[1] * scale)))
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    pad_x, pad_y = (width - inner[0]) // 2, (height - inner[1]) // 2
    canvas.paste(image.resize(inner, Image.BILINEAR), (pad_x, pad_y))
    return canvas, Geometry(source, scale, scale, pad_x, pad_y)
