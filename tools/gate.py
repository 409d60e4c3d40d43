"""The accuracy gate: the quantized model against the float model on held-out images.

classify: top-1 agreement and top-5 overlap; image-to-image: PSNR of the rendered 8-bit
images; embed: cosine similarity. Thresholds have defaults per task and can be overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.tasks import classify, detect, image_to_image
from tools.errors import ConvertError

# classify: on a small unlabeled held-out set, top-1 flips between near-tied classes are noise
# (a crop of grass is 7% "lawn mower" and 6% "hay"), so the strict check is on the images the
# float model is sure of (top-1 probability at least 0.5), with a floor on all images.
CONFIDENT = 0.5
DEFAULTS: dict[str, dict[str, float]] = {
    "classify": {"top1_agreement_confident": 0.95, "top1_agreement": 0.75,
                 "top5_overlap": 0.8},
    "embed": {"cosine_mean": 0.98, "cosine_min": 0.9},
    "image-to-image": {"psnr_db": 30.0},
    "detect": {"box_f1": 0.9, "matched_iou": 0.75},  # COCO's strict match is 0.75
}
MATCH_IOU = 0.5


@dataclass
class Verdict:
    """Whether the candidate passed, its metrics, and the thresholds it was held to."""

    passed: bool
    metrics: dict[str, float]
    thresholds: dict[str, float]
    failures: list[str] = field(default_factory=list)

    def reason(self) -> str:
        if self.passed:
            return ", ".join(f"{k} {self.metrics[k]:.4g} ≥ {v:g}"
                             for k, v in self.thresholds.items())
        return "; ".join(self.failures)


def thresholds(task: str, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The gate for `task` with `overrides` applied. Raises ConvertError on an unknown key."""
    gate = dict(DEFAULTS[task])
    for key, value in (overrides or {}).items():
        if key not in gate:
            raise ConvertError(f"--gate {key}: unknown for task {task}; use "
                               f"{', '.join(gate)}")
        gate[key] = float(value)
    return gate


def judge(task: str, reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]],
          output_spec: Mapping[str, Any], gate: Mapping[str, float],
          size: tuple[int, int] = (0, 0)) -> Verdict:
    """Compare the candidate's outputs with the float model's, image by image.

    Each item is one image's list of output tensors; `size` is the model's input (H, W),
    which box decoding needs.
    """
    if task == "detect":
        metrics = _detect(reference, candidate, output_spec, size)
    else:
        first = [r[0] for r in reference], [c[0] for c in candidate]
        metrics = METRICS[task](*first, output_spec)
    failures = [f"{key} {metrics[key]:.4g} is below {limit:g}"
                for key, limit in gate.items() if metrics[key] < limit]
    return Verdict(not failures, metrics, dict(gate), failures)


def _classify(reference, candidate, spec) -> dict[str, float]:
    top1, confident, overlap = [], [], []
    for ref, got in zip(reference, candidate, strict=True):
        ref, got = ref.reshape(-1), got.reshape(-1)
        agree = float(np.argmax(ref) == np.argmax(got))
        top1.append(agree)
        if classify.activate(ref.astype(np.float64), spec["activation"]).max() >= CONFIDENT:
            confident.append(agree)
        k = min(5, ref.size)
        overlap.append(len(set(np.argsort(-ref)[:k]) & set(np.argsort(-got)[:k])) / k)
    return {"top1_agreement_confident": float(np.mean(confident)) if confident else 1.0,
            "top1_agreement": float(np.mean(top1)), "top5_overlap": float(np.mean(overlap)),
            "confident_images": float(len(confident))}


def _embed(reference, candidate, spec) -> dict[str, float]:
    cosines = [cosine(r.reshape(-1), c.reshape(-1)) for r, c in
               zip(reference, candidate, strict=True)]
    return {"cosine_mean": float(np.mean(cosines)), "cosine_min": float(np.min(cosines))}


def _image(reference, candidate, spec) -> dict[str, float]:
    psnrs, correlations = [], []
    for ref, got in zip(reference, candidate, strict=True):
        a = image_to_image.to_pixels(ref, spec).astype(np.float64)
        b = image_to_image.to_pixels(got, spec).astype(np.float64)
        psnrs.append(psnr(a, b))
        correlations.append(float(np.corrcoef(ref.ravel(), got.ravel())[0, 1])
                            if np.std(ref) > 0 and np.std(got) > 0 else 1.0)
    return {"psnr_db": float(np.mean(psnrs)), "correlation": float(np.mean(correlations))}


def _detect(reference, candidate, spec, size) -> dict[str, float]:
    matched = expected = found = 0
    ious: list[float] = []
    for ref, got in zip(reference, candidate, strict=True):
        a, b = boxes(ref, spec, size), boxes(got, spec, size)
        expected, found = expected + len(a), found + len(b)
        for box_iou in match(a, b):
            matched += 1
            ious.append(box_iou)
    recall = matched / expected if expected else 1.0
    precision = matched / found if found else 1.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return {"box_f1": f1, "matched_iou": float(np.mean(ious)) if ious else 1.0,
            "boxes": float(expected)}


def boxes(outputs: list[np.ndarray], spec: Mapping[str, Any], size) -> np.ndarray:
    """Detections of one image as (N, 4) fractions of the input, as the box finds them."""
    found = detect.find(outputs, spec, size, float(spec["score_threshold"]))
    return np.array([box for box, _ in found]).reshape(-1, 4)


def match(reference: np.ndarray, candidate: np.ndarray) -> list[float]:
    """Greedy one-to-one matching at IoU >= 0.5; returns the matched pairs' IoUs."""
    taken: set[int] = set()
    found = []
    for box in reference:
        if len(candidate) == 0:
            break
        overlaps = detect.iou(box, candidate)
        for j in np.argsort(-overlaps):
            if int(j) not in taken and overlaps[j] >= MATCH_IOU:
                taken.add(int(j))
                found.append(float(overlaps[j]))
                break
    return found


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; two zero vectors count as identical."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else float(np.allclose(a, b))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (capped at 100 for identical images)."""
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10 * np.log10(peak * peak / mse))


METRICS = {"classify": _classify, "embed": _embed, "image-to-image": _image}
