"""detect: an image in, boxes with labels and scores out, in the input image's pixels.

Three kinds of detector output are read:
- `ssd-anchors`: raw SSD regressions and logits, decoded here. Box decoding follows the anchor
  scheme of MediaPipe's face detectors (BlazeFace): one anchor grid per stride, box centres
  and sizes regressed relative to the anchors in input pixels, scores as clipped logits
  through a sigmoid, then non-maximum suppression (weighted: overlapping boxes are averaged
  by score, as MediaPipe does; or hard).
- `ssd-tf`: the raw heads of a TensorFlow object detection API SSD (box encodings and class
  logits, the graph cut before its `Postprocessor/`), decoded here as its postprocessor does:
  anchors from the manifest's `ssd_anchor_generator` parameters, the Faster R-CNN box coder,
  sigmoid scores with the background column(s) dropped, boxes clipped to the input, then
  hard NMS per class (`appliance.tasks.ssd`). Onnxruntime runs the postprocessor's loops and
  per-class NMS far slower, and loads them slower, than numpy does this.
- `decoded`: boxes, scores and classes already decoded and suppressed inside the graph (the
  TensorFlow object detection API's `detection_boxes/scores/classes/num_detections`), with
  boxes as fractions of the input in `box_order` and class ids indexing the labels file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, list_of, one_of, positive
from appliance.tasks import ssd
from appliance.tasks.base import Context, Option, Result, Task
from appliance.tasks.preprocess import Geometry

MATCH_IOU = 0.5  # the gate's one-to-one match between float and candidate boxes
# A detection: (x0, y0, x1, y1) as fractions of the input, score, class index.
Found = tuple[np.ndarray, float, int]


class Detect(Task):
    name = "detect"
    summary = "boxes with labels and scores, in the image's pixels, best first"
    output = {
        "labels": Field(str, required=False, default="labels.txt"),
        "box_format": Field(str, check=one_of("ssd-anchors", "ssd-tf", "decoded")),
        "strides": Field(list, required=False, check=list_of(int), default=[]),
        "anchor_offset": Field((int, float), required=False, default=0.5),
        "anchors_per_cell": Field(int, required=False, check=positive, default=2),
        "boxes_tensor": Field(int, required=False, default=0),
        "scores_tensor": Field(int, required=False, default=1),
        "classes_tensor": Field(int, required=False, default=2),
        "count_tensor": Field(int, required=False, default=3),
        "box_order": Field(str, required=False, check=one_of("yxyx", "xyxy"),
                           default="yxyx"),
        "score_clip": Field((int, float), required=False, default=80.0),
        "score_threshold": Field((int, float), required=False, default=0.5),
        "nms_iou": Field((int, float), required=False, default=0.3),
        "nms": Field(str, required=False, check=one_of("weighted", "hard"),
                     default="weighted"),
        "max_detections": Field(int, required=False, check=positive, default=100),
        # ssd-tf: TF's ssd_anchor_generator (square feature maps), box coder and NMS
        "feature_maps": Field(list, required=False, check=list_of(int), default=[]),
        "min_scale": Field((int, float), required=False, check=positive, default=0.2),
        "max_scale": Field((int, float), required=False, check=positive, default=0.95),
        "aspect_ratios": Field(list, required=False, check=list_of((int, float)), default=[]),
        "interpolated_scale_aspect_ratio": Field((int, float), required=False, default=1.0),
        "reduce_boxes_in_lowest_layer": Field(bool, required=False, default=True),
        "box_scale_factors": Field(list, required=False, check=list_of((int, float), 4),
                                   default=[10.0, 10.0, 5.0, 5.0]),
        "background_classes": Field(int, required=False, default=0),
        "nms_min_score": Field((int, float), required=False, default=0.0),
        "max_per_class": Field(int, required=False, check=positive, default=100),
    }
    needs_labels = True
    options = (Option("threshold", float, "the lowest score reported (0 to 1)", low=0.0,
                      high=1.0, default=lambda b: float(b.manifest.output["score_threshold"])),)
    answer = {"detections": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "score": {"type": "number"},
        "box": {"type": "array", "items": {"type": "number"},
                "description": "x0, y0, x1, y1 in the image's pixels"}}}}}
    gate = {"box_f1": 0.9, "matched_iou": 0.75}  # COCO's strict match is 0.75

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        if spec["box_format"] == "ssd-anchors" and not spec["strides"]:
            return "strides: required for box_format ssd-anchors (the anchor grid's strides)"
        if spec["box_format"] == "ssd-tf":
            return check_ssd_tf(spec)
        return None

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """Decode, threshold, suppress and map boxes back to the input image's pixels."""
        bundle = ctx.bundle
        size = bundle.manifest.input.size
        found = find(outputs, bundle.manifest.output, size, ctx.opts["threshold"])
        detections = [{"label": label_of(bundle.labels, cls), "score": round(score, 4),
                       "box": to_source(box, size, ctx.geometry)} for box, score, cls in found]
        return Result(body={"detections": detections})

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The frame with each box and its label."""
        from appliance import overlays

        return overlays.boxes(size, frame, list(body.get("detections", [])))

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """Box F1 at IoU 0.5 and the matched boxes' mean IoU, float against candidate; a box
        matches only one of the same class (a quantized class id one off once passed as a
        cat called "bird")."""
        matched = expected = found = 0
        ious: list[float] = []
        for ref, got in zip(reference, candidate, strict=True):
            (a, a_classes), (b, b_classes) = boxes(ref, spec, size), boxes(got, spec, size)
            expected, found = expected + len(a), found + len(b)
            for box_iou in match(a, b, a_classes, b_classes):
                matched += 1
                ious.append(box_iou)
        recall = matched / expected if expected else 1.0
        precision = matched / found if found else 1.0
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        return {"box_f1": f1, "matched_iou": float(np.mean(ious)) if ious else 1.0,
                "boxes": float(expected)}


def check_ssd_tf(spec: Mapping[str, Any]) -> str | None:
    """What is wrong with an `ssd-tf` output section ("field: problem"), or None."""
    lists = {"feature_maps": "the square feature maps' sizes, lowest layer first",
             "aspect_ratios": "the anchors' aspect ratios (width / height)",
             "box_scale_factors": "the box coder's y, x, h, w scale factors"}
    for field, what in lists.items():
        if not spec[field] or min(spec[field]) <= 0:
            return f"{field}: {what}, all above 0, are required for box_format ssd-tf"
    if spec["min_scale"] > spec["max_scale"]:
        return (f"min_scale: {spec['min_scale']} is above max_scale {spec['max_scale']}")
    if not 0 <= spec["background_classes"] < 1000:
        return "background_classes: must be from 0 (no background column) to 999"
    return None


def label_of(labels: list[str], index: int) -> str:
    """The label of class `index` (its number when the labels file has no such line)."""
    return labels[index] if 0 <= index < len(labels) else str(index)


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
        limit: int, classes: np.ndarray | None = None, per_class: int = 0) -> list[Found]:
    """Non-maximum suppression, best first: a box suppresses the boxes of its own class
    (all one class, 0, when `classes` is None) that overlap it by IoU above `threshold`;
    weighted merges each cluster by score. At most `per_class` (0: no limit) of a class and
    `limit` in all are kept; equal scores keep the input's order, as TensorFlow's NMS does."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    classes = (np.zeros(len(order), np.int64) if classes is None
               else np.asarray(classes, np.int64)[order])
    kept: list[Found] = []
    counts: dict[int, int] = {}
    alive = np.ones(len(scores), bool)
    for i in range(len(scores)):
        cls = int(classes[i])
        if len(kept) >= limit:
            break
        if not alive[i] or (per_class and counts.get(cls, 0) >= per_class):
            continue
        cluster = alive & (classes == cls) & (iou(boxes[i], boxes) > threshold)
        cluster[i] = True
        box = boxes[i]
        if weighted:
            weights = scores[cluster]
            box = (boxes[cluster] * weights[:, None]).sum(axis=0) / weights.sum()
        kept.append((box, float(scores[i]), cls))
        counts[cls] = counts.get(cls, 0) + 1
        alive &= ~cluster
    return kept


def find(outputs: list[np.ndarray], spec: Mapping[str, Any], size: tuple[int, int],
         threshold: float) -> list[Found]:
    """Boxes (x0, y0, x1, y1 as fractions of the input), scores and class indices, best
    first, after the threshold (and, for raw outputs, non-maximum suppression). Raises
    ValueError when the outputs do not match the manifest."""
    if spec["box_format"] == "decoded":
        return find_decoded(outputs, spec, threshold)
    if spec["box_format"] == "ssd-tf":
        return find_ssd_tf(outputs, spec, threshold)
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


def find_ssd_tf(outputs: list[np.ndarray], spec: Mapping[str, Any],
                threshold: float) -> list[Found]:
    """Detections from a TF SSD's raw heads, as its postprocessor finds them: scores above
    `nms_min_score` and at least `threshold`, boxes decoded and clipped to the input (those
    left with no area dropped), then hard (or weighted) NMS per class. Class ids are score
    columns, background included, so they index the labels file. Only candidates are
    decoded: a 300 px SSD has 1917 anchors x 90 classes. Raises ValueError when the outputs
    do not match the anchors."""
    try:
        codes = np.asarray(outputs[spec["boxes_tensor"]], np.float32).reshape(-1, 4)
        logits = np.asarray(outputs[spec["scores_tensor"]], np.float32)
        logits = logits.reshape(-1, logits.shape[-1])
    except (IndexError, ValueError):
        raise ValueError(f"the model's outputs ({len(outputs)}) are not box encodings (N, 4) "
                         "and class scores (N, classes) where output.boxes_tensor and "
                         "output.scores_tensor say") from None
    grid = ssd.anchors(spec)
    if not len(grid) == len(codes) == len(logits):
        raise ValueError(f"the model gives {len(codes)} boxes and {len(logits)} rows of "
                         f"scores for {len(grid)} anchors")
    background = spec["background_classes"]
    floor = float(spec["nms_min_score"])
    # flatnonzero: np.nonzero on the 2-d mask took 0.5 ms of a request, this 0.03
    rows, columns = np.divmod(np.flatnonzero(logits > _logit(max(threshold, floor) - 1e-6)),
                              logits.shape[1])
    rows, columns = rows[columns >= background], columns[columns >= background]
    by_class = np.lexsort((rows, columns))  # class by class, as TF lists them (for ties)
    rows, columns = rows[by_class], columns[by_class]
    scores = 1 / (1 + np.exp(-np.clip(logits[rows, columns], -80, 80)))
    boxes_ = np.clip(ssd.decode(codes[rows], grid[rows], spec["box_scale_factors"]), 0, 1)
    keep = ((scores > floor) & (scores >= threshold)
            & ((boxes_[:, 2] - boxes_[:, 0]) * (boxes_[:, 3] - boxes_[:, 1]) > 0))
    return nms(boxes_[keep][:, [1, 0, 3, 2]], scores[keep], float(spec["nms_iou"]),
               spec["nms"] == "weighted", spec["max_detections"], columns[keep],
               spec["max_per_class"])


def _logit(p: float) -> float:
    """The logit whose sigmoid is `p` (-inf at or below 0): the candidates' bound, taken a
    little below the threshold so float32 sigmoids on the boundary are still compared."""
    return -np.inf if p <= 0 else float(np.log(p / (1 - p))) if p < 1 else np.inf


def find_decoded(outputs: list[np.ndarray], spec: Mapping[str, Any],
                 threshold: float) -> list[Found]:
    """Detections a graph decoded itself: its first `count` rows above the threshold, best
    first. Raises ValueError when the tensors disagree in length."""
    try:
        boxes_ = np.asarray(outputs[spec["boxes_tensor"]], np.float32).reshape(-1, 4)
        scores = np.asarray(outputs[spec["scores_tensor"]], np.float32).reshape(-1)
        classes = np.asarray(outputs[spec["classes_tensor"]], np.float32).reshape(-1)
        count = np.asarray(outputs[spec["count_tensor"]]).reshape(-1)
    except IndexError:
        raise ValueError(f"the model gives {len(outputs)} outputs; output.*_tensor name "
                         "others") from None
    if not len(boxes_) == len(scores) == len(classes):
        raise ValueError(f"the model gives {len(boxes_)} boxes, {len(scores)} scores and "
                         f"{len(classes)} classes")
    n = int(min(len(scores), max(0, count[0]) if count.size else len(scores)))
    if spec["box_order"] == "yxyx":
        boxes_ = boxes_[:, [1, 0, 3, 2]]
    boxes_ = np.nan_to_num(np.clip(boxes_[:n], 0.0, 1.0))
    order = np.argsort(-scores[:n], kind="stable")
    # Rounded, not truncated: a class id computed in float may come out as 16.9999.
    return [(boxes_[i], float(scores[i]), round(float(classes[i]))) for i in order
            if scores[i] >= threshold][:spec["max_detections"]]


def boxes(outputs: list[np.ndarray], spec: Mapping[str, Any],
          size) -> tuple[np.ndarray, np.ndarray]:
    """Detections of one image as (N, 4) fractions of the input, as the box finds them, and
    their (N,) class ids."""
    found = find(outputs, spec, size, float(spec["score_threshold"]))
    return (np.array([box for box, _, _ in found]).reshape(-1, 4),
            np.array([label for _, _, label in found], np.int64))


def match(reference: np.ndarray, candidate: np.ndarray, reference_classes=None,
          candidate_classes=None) -> list[float]:
    """Greedy one-to-one matching at IoU >= 0.5 between boxes of the same class (when
    classes are given); returns the matched pairs' IoUs."""
    taken: set[int] = set()
    found = []
    for index, box in enumerate(reference):
        if len(candidate) == 0:
            break
        overlaps = iou(box, candidate)
        if reference_classes is not None and candidate_classes is not None:
            overlaps = np.where(candidate_classes == reference_classes[index], overlaps, 0.0)
        for j in np.argsort(-overlaps):
            if int(j) not in taken and overlaps[j] >= MATCH_IOU:
                taken.add(int(j))
                found.append(float(overlaps[j]))
                break
    return found


def to_source(box: np.ndarray, size: tuple[int, int], geometry: Geometry) -> list[float]:
    """A box in input fractions to the original image's pixels, clipped to the image."""
    height, width = size
    x = (np.array([box[0], box[2]]) * width - geometry.pad_x) / geometry.scale_x
    y = (np.array([box[1], box[3]]) * height - geometry.pad_y) / geometry.scale_y
    w, h = geometry.source_size
    x, y = np.clip(x, 0, w), np.clip(y, 0, h)
    return [round(float(x[0]), 1), round(float(y[0]), 1), round(float(x[1]), 1),
            round(float(y[1]), 1)]
