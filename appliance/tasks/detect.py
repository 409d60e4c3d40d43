"""detect: an image in, boxes with labels and scores out, in the input image's pixels.

Box decoding follows the SSD anchor scheme of MediaPipe's face detectors (BlazeFace): one
anchor grid per stride, box centres and sizes regressed relative to the anchors in input
pixels, scores as clipped logits through a sigmoid, then non-maximum suppression (weighted:
overlapping boxes are averaged by score, as MediaPipe does; or hard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.errors import BadRequest
from appliance.schema import Field, list_of, one_of, positive
from appliance.tasks.base import Result, parse_options
from appliance.tasks.preprocess import Geometry, decode_hint, prepare

if TYPE_CHECKING:
    from appliance.bundle import Bundle

__all__ = ["OUTPUT", "decode_hint", "options", "postprocess", "prepare"]

OUTPUT = {
    "labels": Field(str, required=False, default="labels.txt"),
    "box_format": Field(str, check=one_of("ssd-anchors")),
    "strides": Field(list, check=list_of(int)),
    "anchor_offset": Field((int, float), required=False, default=0.5),
    "anchors_per_cell": Field(int, required=False, check=positive, default=2),
    "boxes_tensor": Field(int, required=False, default=0),
    "scores_tensor": Field(int, required=False, default=1),
    "score_clip": Field((int, float), required=False, default=80.0),
    "score_threshold": Field((int, float), required=False, default=0.5),
    "nms_iou": Field((int, float), required=False, default=0.3),
    "nms": Field(str, required=False, check=one_of("weighted", "hard"), default="weighted"),
    "max_detections": Field(int, required=False, check=positive, default=100),
}
NEEDS_LABELS = True


def options(query: Mapping[str, str], bundle: Bundle) -> dict[str, Any]:
    """Parse `threshold` (0 to 1). Raises BadRequest."""
    raw = parse_options(query, {"threshold": bundle.manifest.output["score_threshold"]})
    try:
        threshold = float(raw["threshold"])
    except (TypeError, ValueError):
        raise BadRequest(f"option threshold must be a number, got {raw['threshold']!r}") \
            from None
    if not 0.0 <= threshold <= 1.0:
        raise BadRequest(f"option threshold must be between 0 and 1, got {threshold:g}")
    return {"threshold": threshold}


def anchors(size: tuple[int, int], strides: list[int], offset: float,
            per_cell: int) -> np.ndarray:
    """Anchor centres (N, 2) as fractions of the input, row-major per feature map.

    Consecutive layers with the same stride share one feature map whose cells hold all their
    anchors together (MediaPipe's ssd_anchors_calculator order).
    """
    height, width = size
    layers = []
    groups: list[list[int]] = []
    for stride in strides:
        if groups and groups[-1][0] == stride:
            groups[-1][1] += per_cell
        else:
            groups.append([stride, per_cell])
    for stride, count in groups:
        rows, cols = height // stride, width // stride
        ys, xs = np.meshgrid((np.arange(rows) + offset) / rows, (np.arange(cols) + offset) / cols,
                             indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        layers.append(np.repeat(centres, count, axis=0))
    return np.concatenate(layers).astype(np.float32)


def decode(raw_boxes: np.ndarray, anchor_xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Regressed (cx, cy, w, h, ...) in input pixels to (x0, y0, x1, y1) fractions."""
    height, width = size
    scale = np.array([width, height, width, height], np.float32)
    cxcywh = raw_boxes[:, :4] / scale
    centre = cxcywh[:, :2] + anchor_xy
    half = cxcywh[:, 2:4] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with many (x0, y0, x1, y1)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, weighted: bool,
        limit: int) -> list[tuple[np.ndarray, float]]:
    """Non-maximum suppression, best first; weighted merges each cluster by score."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept: list[tuple[np.ndarray, float]] = []
    alive = np.ones(len(scores), bool)
    for i in range(len(scores)):
        if not alive[i] or len(kept) >= limit:
            continue
        overlap = iou(boxes[i], boxes) > threshold
        cluster = alive & overlap
        cluster[i] = True
        box = boxes[i]
        if weighted:
            weights = scores[cluster]
            box = (boxes[cluster] * weights[:, None]).sum(axis=0) / weights.sum()
        kept.append((box, float(scores[i])))
        alive &= ~cluster
    return kept


def find(outputs: list[np.ndarray], spec: Mapping[str, Any], size: tuple[int, int],
         threshold: float) -> list[tuple[np.ndarray, float]]:
    """Boxes (x0, y0, x1, y1 as fractions of the input) and scores, best first, after the
    threshold and non-maximum suppression. Raises ValueError when the outputs do not match
    the anchors."""
    raw = np.asarray(outputs[spec["boxes_tensor"]], np.float32)
    raw_boxes = raw.reshape(-1, raw.shape[-1])
    logits = np.asarray(outputs[spec["scores_tensor"]], np.float32).reshape(-1)
    clip = float(spec["score_clip"])
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -clip, clip)))
    grid = anchors(size, spec["strides"], float(spec["anchor_offset"]),
                   spec["anchors_per_cell"])
    if len(grid) != len(scores) or len(raw_boxes) != len(scores):
        raise ValueError(f"the model gives {len(scores)} scores and {len(raw_boxes)} boxes "
                         f"for {len(grid)} anchors")
    keep = scores >= threshold
    return nms(decode(raw_boxes[keep], grid[keep], size), scores[keep],
               float(spec["nms_iou"]), spec["nms"] == "weighted", spec["max_detections"])


def postprocess(outputs: list[np.ndarray], bundle: Bundle, geometry: Geometry,
                opts: Mapping[str, Any]) -> Result:
    """Decode, threshold, suppress and map boxes back to the input image's pixels."""
    size = bundle.manifest.input.size
    found = find(outputs, bundle.manifest.output, size, opts["threshold"])
    label = bundle.labels[0] if bundle.labels else "object"
    detections = [{"label": label, "score": round(score, 4),
                   "box": to_source(box, size, geometry)} for box, score in found]
    return Result(body={"detections": detections})


def to_source(box: np.ndarray, size: tuple[int, int], geometry: Geometry) -> list[float]:
    """A box in input fractions to the original image's pixels, clipped to the image."""
    height, width = size
    x = (np.array([box[0], box[2]]) * width - geometry.pad_x) / geometry.scale_x
    y = (np.array([box[1], box[3]]) * height - geometry.pad_y) / geometry.scale_y
    w, h = geometry.source_size
    x, y = np.clip(x, 0, w), np.clip(y, 0, h)
    return [round(float(x[0]), 1), round(float(y[0]), 1), round(float(x[1]), 1),
            round(float(y[1]), 1)]
