"""image-to-image: an image in, an image out at the input's aspect ratio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from appliance.schema import Field, list_of, one_of, positive
from appliance.tasks.base import Result, choice_option, parse_options
from appliance.tasks.preprocess import Geometry, decode_hint, prepare

if TYPE_CHECKING:
    from appliance.bundle import Bundle

__all__ = ["OUTPUT", "decode_hint", "options", "postprocess", "prepare"]

OUTPUT = {
    "range": Field(list, check=list_of((int, float), 2)),
    "color": Field(str, check=one_of("RGB", "BGR", "gray")),
    "layout": Field(str, required=False, check=one_of("NCHW", "NHWC"), default="NCHW"),
    "invert": Field(bool, required=False, default=False),
    "max_side": Field(int, required=False, check=positive, default=1024),
    "tensor": Field(str, required=False, default=""),
}
NEEDS_LABELS = False
FORMATS = ("png", "jpeg", "json")


def options(query: Mapping[str, str], bundle: Bundle) -> dict[str, Any]:
    """Parse `format` (png, jpeg or json). Raises BadRequest."""
    raw = parse_options(query, {"format": "png"})
    return {"format": choice_option("format", raw["format"], FORMATS)}


def postprocess(outputs: list[np.ndarray], bundle: Bundle, geometry: Geometry,
                opts: Mapping[str, Any]) -> Result:
    """Scale the output tensor to 8-bit pixels and resize it to the input's aspect ratio."""
    spec = bundle.manifest.output
    pixels = to_pixels(np.asarray(outputs[0]), spec)
    image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
    image = image.resize(output_size(geometry.source_size, spec["max_side"]), Image.BICUBIC)
    return Result(body={"width": image.width, "height": image.height}, image=image)


def to_pixels(tensor: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """One output tensor (batch of one) to an HxW or HxWx3 uint8 array."""
    plane = tensor[0] if tensor.ndim == 4 else tensor
    if spec["layout"] == "NCHW":
        plane = np.moveaxis(plane, 0, -1)
    low, high = spec["range"]
    scaled = (plane.astype(np.float32) - low) * (255.0 / (high - low))
    pixels = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    if spec["invert"]:
        pixels = 255 - pixels
    if pixels.shape[-1] == 1:
        return pixels[..., 0]
    return pixels[..., ::-1] if spec["color"] == "BGR" else pixels


def output_size(source: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The input's size scaled down (never up) so that its longer side is at most max_side."""
    width, height = source
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
