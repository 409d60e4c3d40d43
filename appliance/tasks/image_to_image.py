"""image-to-image: an image in, an image out at the input's aspect ratio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, list_of, one_of, positive
from appliance.tasks.base import Context, Option, Result, Task

FORMATS = ("png", "jpeg", "json")
FORMAT = Option("format", str, "the image itself (png, jpeg), or JSON with it in base64",
                default="png", choices=FORMATS)
IMAGE_ANSWER = {"width": {"type": "integer"}, "height": {"type": "integer"},
                "image": {"type": "string", "description": "format=json: the image in base64"},
                "mime": {"type": "string"}}


class ImageToImage(Task):
    name = "image-to-image"
    summary = "a new picture made from the photo (png or jpeg, or JSON with it in base64)"
    output = {
        "range": Field(list, check=list_of((int, float), 2)),
        "color": Field(str, check=one_of("RGB", "BGR", "gray")),
        "layout": Field(str, required=False, check=one_of("NCHW", "NHWC"), default="NCHW"),
        "invert": Field(bool, required=False, default=False),
        "max_side": Field(int, required=False, check=positive, default=1024),
        "tensor": Field(str, required=False, default=""),
    }
    needs_labels = False
    options = (FORMAT,)
    answer = IMAGE_ANSWER
    images = ("png", "jpeg")
    gate = {"psnr_db": 30.0}

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """Scale the output tensor to 8-bit pixels and resize it to the input's aspect."""
        spec = ctx.bundle.manifest.output
        pixels = to_pixels(np.asarray(ctx.output(outputs)), spec)
        image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
        image = image.resize(output_size(ctx.geometry.source_size, spec["max_side"]),
                             Image.BICUBIC)
        return Result(body={"width": image.width, "height": image.height}, image=image)

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The made picture, edge to edge (the frame while there is none)."""
        from appliance import screens

        return screens.fill(output if output is not None else frame, size)

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """PSNR of the rendered 8-bit pictures, and the tensors' correlation."""
        psnrs, correlations = [], []
        for ref, got in zip(reference, candidate, strict=True):
            ref, got = ref[0], got[0]
            a = to_pixels(ref, spec).astype(np.float64)
            b = to_pixels(got, spec).astype(np.float64)
            psnrs.append(psnr(a, b))
            correlations.append(float(np.corrcoef(ref.ravel(), got.ravel())[0, 1])
                                if np.std(ref) > 0 and np.std(got) > 0 else 1.0)
        return {"psnr_db": float(np.mean(psnrs)), "correlation": float(np.mean(correlations))}


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


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (capped at 100 for identical images)."""
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10 * np.log10(peak * peak / mse))
