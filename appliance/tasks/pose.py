"""pose: an image in, a person's keypoints (named as COCO names them) and skeleton out.

The model gives, per person, one row per keypoint of (y, x, score) with y and x as fractions
of its input (MoveNet's layout); they are mapped back to the picture's pixels. A person's
score is the mean of its keypoints' scores; its box spans the keypoints that pass the
threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, list_of, one_of, positive
from appliance.tasks.base import Context, Option, Result, Task
from appliance.tasks.preprocess import Geometry

COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO_EDGES = (
    ("left_ear", "left_eye"), ("left_eye", "nose"), ("nose", "right_eye"),
    ("right_eye", "right_ear"), ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
)
CLOSE = 0.05  # the gate: a keypoint agrees within 5% of the person's size


class Pose(Task):
    name = "pose"
    summary = "each person's keypoints with scores in the image's pixels, and the skeleton"
    output = {
        "keypoint_format": Field(str, required=False, check=one_of("yx-score"),
                                 default="yx-score"),
        "keypoints": Field(list, required=False, check=list_of(str),
                           default=list(COCO_KEYPOINTS)),
        "edges": Field(list, required=False, check=list_of(list),
                       default=[list(edge) for edge in COCO_EDGES]),
        "score_threshold": Field((int, float), required=False, default=0.3),
        # A single-pose model always places a skeleton: on MoveNet, eight pictures without a
        # person had at most 2 keypoints at 0.3, two of people 8 and 12.
        "min_keypoints": Field(int, required=False, check=positive, default=4),
        "tensor": Field(str, required=False, default=""),
    }
    needs_labels = False
    options = (Option("threshold", float, "the lowest keypoint score that counts towards a "
                      "person and their box (0 to 1; a person needs output.min_keypoints of "
                      "them; every keypoint is listed with its score)",
                      low=0.0, high=1.0,
                      default=lambda b: float(b.manifest.output["score_threshold"])),)
    answer = {
        "people": {"type": "array", "items": {"type": "object", "properties": {
            "score": {"type": "number"}, "box": {"type": ["array", "null"]},
            "keypoints": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "x": {"type": "number"}, "y": {"type": "number"},
                "score": {"type": "number"}}}}}}},
        "edges": {"type": "array", "items": {"type": "array", "items": {"type": "string"}},
                  "description": "pairs of keypoint names joined by the skeleton"}}
    gate = {"pck": 0.9}

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        names = set(spec["keypoints"])
        if len(names) != len(spec["keypoints"]):
            return "keypoints: a name appears twice"
        for edge in spec["edges"]:
            if len(edge) != 2 or not set(edge) <= names:
                return f"edges: {edge!r} must be two of the keypoints' names"
        return None

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """Each person's keypoints in the picture's pixels, with the skeleton's edges."""
        spec = ctx.bundle.manifest.output
        rows = keypoints(np.asarray(ctx.output(outputs), np.float32), len(spec["keypoints"]))
        size = ctx.bundle.manifest.input.size
        threshold = ctx.opts["threshold"]
        people = [person(points, spec["keypoints"], size, ctx.geometry, threshold)
                  for points in rows
                  if np.count_nonzero(points[:, 2] >= threshold) >= spec["min_keypoints"]]
        people.sort(key=lambda p: -p["score"])
        return Result(body={"people": people, "edges": [list(e) for e in spec["edges"]]})

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The skeleton in clean lines over the frame."""
        from appliance import overlays

        return overlays.skeleton(size, frame, list(body.get("people", [])),
                                 list(body.get("edges", [])))

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """PCK: the share of the float model's confident keypoints that the candidate puts
        within 5% of the person's size (the diagonal of their box) of the same place."""
        close, total, errors = 0, 0, []
        count = len(spec["keypoints"])
        for ref, got in zip(reference, candidate, strict=True):
            for a, b in zip(keypoints(np.asarray(ref[0], np.float32), count),
                            keypoints(np.asarray(got[0], np.float32), count), strict=True):
                sure = a[:, 2] >= spec["score_threshold"]
                if sure.sum() < 2:
                    continue
                span = a[sure, :2].max(axis=0) - a[sure, :2].min(axis=0)
                scale = max(float(np.hypot(*span)), 1e-6)
                error = np.hypot(*(a[sure, :2] - b[sure, :2]).T) / scale
                close += int((error <= CLOSE).sum())
                total += int(sure.sum())
                errors.extend(error.tolist())
        return {"pck": close / total if total else 1.0,
                "mean_error": float(np.mean(errors)) if errors else 0.0,
                "keypoints": float(total)}


def keypoints(tensor: np.ndarray, count: int) -> np.ndarray:
    """(people, count, 3) rows of (y, x, score) from the model's output. Raises ValueError
    when its size is not a multiple of count x 3."""
    if tensor.size == 0 or tensor.size % (count * 3):
        raise ValueError(f"the model gives {tensor.size} values, not people x {count} "
                         "keypoints x (y, x, score)")
    return np.nan_to_num(tensor.reshape(-1, count, 3))


def person(points: np.ndarray, names: list[str], size: tuple[int, int], geometry: Geometry,
           threshold: float) -> dict[str, Any]:
    """One person's keypoints mapped to the picture's pixels, their mean score and box."""
    height, width = size
    src_w, src_h = geometry.source_size
    xs = np.clip((points[:, 1] * width - geometry.pad_x) / geometry.scale_x, 0, src_w)
    ys = np.clip((points[:, 0] * height - geometry.pad_y) / geometry.scale_y, 0, src_h)
    scores = np.clip(points[:, 2], 0.0, 1.0)
    sure = scores >= threshold
    box = None
    if sure.any():
        box = [round(float(v), 1) for v in (xs[sure].min(), ys[sure].min(), xs[sure].max(),
                                            ys[sure].max())]
    return {"score": round(float(scores.mean()), 4), "box": box,
            "keypoints": [{"name": name, "x": round(float(x), 1), "y": round(float(y), 1),
                           "score": round(float(s), 4)}
                          for name, x, y, s in zip(names, xs, ys, scores, strict=True)]}
