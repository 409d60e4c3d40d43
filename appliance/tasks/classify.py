"""classify: an image in, the top labels with their scores out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, one_of, positive
from appliance.tasks.base import Context, Option, Result, Task, activate


def _plain_file(value: str) -> str | None:
    if value and ("/" in value or "\\" in value or value in (".", "..") or value.startswith(".")):
        return "must be a plain file name inside the bundle"
    return None


# On a small unlabeled held-out set, top-1 flips between near-tied classes are noise (a crop
# of grass is 7% "lawn mower" and 6% "hay"), so the gate's strict check is on the images the
# float model is sure of (top-1 probability at least 0.5), with a floor on all images.
CONFIDENT = 0.5


def _classes(bundle) -> int:
    return max(1, len(bundle.labels))


class Classify(Task):
    name = "classify"
    summary = "the top labels with their scores, best first"
    output = {
        "labels": Field(str, required=False, default="labels.txt"),
        "activation": Field(str, required=False, check=one_of("softmax", "sigmoid", "none"),
                            default="softmax"),
        "top_k": Field(int, required=False, check=positive, default=5),
        "tensor": Field(str, required=False, default=""),
        # A taught model (appliance.teach): the graph gives an embedding, the head file
        # (numpy arrays: appliance.head) holds the class means; scores are the softmax of
        # cosine similarities, and the last label, `unknown`, answers "none of these".
        "head": Field(str, required=False, default="", check=_plain_file),
        "head_sha256": Field(str, required=False, default=""),
        "unknown": Field(str, required=False, default="unknown", max_length=64),
    }
    needs_labels = True
    options = (Option("top_k", int, "how many labels, best first", low=1, high=_classes,
                      default=lambda b: min(b.manifest.output["top_k"], _classes(b))),)
    answer = {"predictions": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "index": {"type": "integer"},
        "score": {"type": "number"}}}}}
    gate = {"top1_agreement_confident": 0.95, "top1_agreement": 0.75, "top5_overlap": 0.8}

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        """A head needs its sha256 and a sha256 needs a head."""
        if spec["head"] and not re.fullmatch(r"[0-9a-f]{64}", spec["head_sha256"]):
            return "head_sha256: must be the head file's sha256, 64 lowercase hex digits"
        if spec["head_sha256"] and not spec["head"]:
            return "head_sha256: given without a head file (output.head)"
        return None

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """Turn logits (or, with a head, the embedding) into the top-k labels, best first."""
        bundle = ctx.bundle
        values = np.asarray(ctx.output(outputs), dtype=np.float32).reshape(-1)
        if bundle.head is not None:
            scores = bundle.head.probabilities(values)
        else:
            scores = activate(values, bundle.manifest.output["activation"])
        top_k = min(ctx.opts["top_k"], scores.size)
        best = np.argpartition(-scores, top_k - 1)[:top_k]
        best = best[np.argsort(-scores[best], kind="stable")]
        predictions = [_prediction(int(i), float(scores[i]), bundle.labels) for i in best]
        return Result(body={"predictions": predictions})

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The frame with the top three labels and their score bars."""
        from appliance import screens

        screen = screens.fill(frame, size)
        screens.labels(screen, list(body.get("predictions", []))[:3])
        return screen

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """Top-1 agreement (on confident images and on all) and top-5 overlap."""
        top1, confident, overlap = [], [], []
        for ref, got in zip(reference, candidate, strict=True):
            ref, got = ref[0].reshape(-1), got[0].reshape(-1)
            agree = float(np.argmax(ref) == np.argmax(got))
            top1.append(agree)
            if activate(ref.astype(np.float64), spec["activation"]).max() >= CONFIDENT:
                confident.append(agree)
            k = min(5, ref.size)
            overlap.append(len(set(np.argsort(-ref)[:k]) & set(np.argsort(-got)[:k])) / k)
        return {"top1_agreement_confident": float(np.mean(confident)) if confident else 1.0,
                "top1_agreement": float(np.mean(top1)),
                "top5_overlap": float(np.mean(overlap)),
                "confident_images": float(len(confident))}


def _prediction(index: int, score: float, labels: list[str]) -> dict[str, Any]:
    label = labels[index] if index < len(labels) else str(index)
    return {"label": label, "index": index, "score": round(score, 6)}
