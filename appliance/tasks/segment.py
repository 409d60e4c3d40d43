"""segment: an image in, the person (or the model's foreground) cut out of it.

By default the answer is a PNG with alpha: the picture's own pixels where the mask says
foreground, transparent elsewhere, with soft edges from the mask's probabilities. With
`output=mask` it is the mask itself as a grey PNG; with `format=json`, JSON with the image in
base64 and the mask's coverage and bounding box.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, one_of, positive
from appliance.tasks.base import Context, Option, Result, Task
from appliance.tasks.image_to_image import IMAGE_ANSWER, output_size
from appliance.tasks.preprocess import Geometry

FOREGROUND = 0.5  # the mask value above which a pixel counts as the person (box, gate)


class Segment(Task):
    name = "segment"
    summary = "the person cut out as a PNG with alpha (or the mask), at the photo's aspect"
    output = {
        "layout": Field(str, required=False, check=one_of("NHWC", "NCHW"), default="NHWC"),
        "channel": Field(int, required=False, default=0),
        "activation": Field(str, required=False, check=one_of("none", "sigmoid", "softmax"),
                            default="none"),
        "max_side": Field(int, required=False, check=positive, default=1024),
        "tensor": Field(str, required=False, default=""),
    }
    needs_labels = False
    options = (
        Option("output", str, "cutout: the person on transparency; mask: the grey mask",
               default="cutout", choices=("cutout", "mask")),
        Option("format", str, "the PNG itself, or JSON with it in base64", default="png",
               choices=("png", "json")),
    )
    answer = {**IMAGE_ANSWER, "coverage": {"type": "number",
                                           "description": "the share of the picture masked"},
              "box": {"type": ["array", "null"], "items": {"type": "number"},
                      "description": "x0, y0, x1, y1 of the masked part, in the image's "
                                     "pixels (null when nothing is)"}}
    images = ("png",)
    gate = {"mask_iou": 0.9, "mask_iou_min": 0.75}

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        if spec["channel"] < 0:
            return "channel: must be 0 or more"
        return None

    def decode_hint(self, spec) -> tuple[int, int]:
        # The cut-out keeps the photo's own pixels, up to max_side: decode no smaller.
        return 1024, 1024

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """The mask mapped back onto the picture, and the cut-out (or the mask) from it."""
        spec = ctx.bundle.manifest.output
        mask = probabilities(np.asarray(ctx.output(outputs), np.float32), spec)
        source = ctx.geometry.source_size
        size = output_size(source, spec["max_side"])
        alpha = to_source(mask, ctx.geometry, size)
        body = {"width": size[0], "height": size[1],
                "coverage": round(float(alpha.mean()) / 255, 4),
                "box": bounding_box(alpha, source)}
        if ctx.opts["output"] == "mask" or ctx.image is None:
            return Result(body=body, image=Image.fromarray(alpha, "L"))
        cut = ctx.image.convert("RGB").resize(size, Image.BILINEAR).convert("RGBA")
        cut.putalpha(Image.fromarray(alpha, "L"))
        return Result(body=body, image=cut)

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The cut-out person standing on the owner's backdrop."""
        from appliance import overlays

        cut = output if output is not None and output.mode == "RGBA" else None
        if cut is None:
            from appliance import screens

            return screens.fill(frame, size)
        return overlays.cutout(size, cut, backdrop)

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """Mask IoU (foreground above one half) of the candidate against the float model."""
        ious = []
        for ref, got in zip(reference, candidate, strict=True):
            a = probabilities(np.asarray(ref[0], np.float32), spec) >= FOREGROUND
            b = probabilities(np.asarray(got[0], np.float32), spec) >= FOREGROUND
            union = np.logical_or(a, b).sum()
            ious.append(float(np.logical_and(a, b).sum() / union) if union else 1.0)
        return {"mask_iou": float(np.mean(ious)), "mask_iou_min": float(np.min(ious))}


def probabilities(tensor: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """The foreground probability (H, W) from the model's output (batch of one). Raises
    ValueError when the output has no such channel."""
    plane = tensor[0] if tensor.ndim == 4 else tensor
    if plane.ndim == 2:
        plane = plane[..., None] if spec["layout"] == "NHWC" else plane[None]
    if spec["layout"] == "NCHW":
        plane = np.moveaxis(plane, 0, -1)
    if not 0 <= spec["channel"] < plane.shape[-1]:
        raise ValueError(f"output.channel {spec['channel']}: the mask has {plane.shape[-1]} "
                         "channels")
    if spec["activation"] == "softmax":
        shifted = np.exp(plane - plane.max(axis=-1, keepdims=True))
        plane = shifted / shifted.sum(axis=-1, keepdims=True)
    elif spec["activation"] == "sigmoid":
        plane = 1.0 / (1.0 + np.exp(-plane))
    return np.nan_to_num(np.clip(plane[..., spec["channel"]], 0.0, 1.0))


def to_source(mask: np.ndarray, geometry: Geometry, size: tuple[int, int]) -> np.ndarray:
    """The part of the model-space mask that covers the picture, as 8-bit alpha of `size`
    (width, height)."""
    height, width = mask.shape
    src_w, src_h = geometry.source_size
    left, top = geometry.pad_x, geometry.pad_y
    right, bottom = left + src_w * geometry.scale_x, top + src_h * geometry.scale_y
    box = (max(0.0, left), max(0.0, top), min(float(width), right), min(float(height), bottom))
    if box[2] <= box[0] or box[3] <= box[1]:  # the picture maps onto nothing: all background
        return np.zeros((size[1], size[0]), np.uint8)
    plane = Image.fromarray(mask.astype(np.float32), "F")
    plane = plane.resize(size, Image.BILINEAR, box=box)
    return np.clip(np.asarray(plane) * 255 + 0.5, 0, 255).astype(np.uint8)


def bounding_box(alpha: np.ndarray, source: tuple[int, int]) -> list[float] | None:
    """The box around the foreground in the picture's pixels, or None when there is none."""
    rows = np.flatnonzero((alpha >= 128).any(axis=1))
    cols = np.flatnonzero((alpha >= 128).any(axis=0))
    if rows.size == 0:
        return None
    sx, sy = source[0] / alpha.shape[1], source[1] / alpha.shape[0]
    return [round(cols[0] * sx, 1), round(rows[0] * sy, 1), round((cols[-1] + 1) * sx, 1),
            round((rows[-1] + 1) * sy, 1)]
