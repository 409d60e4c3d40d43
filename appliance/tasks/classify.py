"""classify: an image in, the top labels with their scores out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.schema import Field, one_of, positive
from appliance.tasks.base import Result, int_option, parse_options
from appliance.tasks.preprocess import Geometry, decode_hint, prepare

if TYPE_CHECKING:
    from appliance.bundle import Bundle

__all__ = ["OUTPUT", "decode_hint", "options", "postprocess", "prepare"]

OUTPUT = {
    "labels": Field(str, required=False, default="labels.txt"),
    "activation": Field(str, required=False, check=one_of("softmax", "sigmoid", "none"),
                        default="softmax"),
    "top_k": Field(int, required=False, check=positive, default=5),
    "tensor": Field(str, required=False, default=""),
}
NEEDS_LABELS = True


def options(query: Mapping[str, str], bundle: Bundle) -> dict[str, Any]:
    """Parse `top_k` (1 to the number of classes). Raises BadRequest."""
    classes = max(1, len(bundle.labels))
    raw = parse_options(query, {"top_k": min(bundle.manifest.output["top_k"], classes)})
    return {"top_k": int_option("top_k", raw["top_k"], 1, classes)}


def postprocess(outputs: list[np.ndarray], bundle: Bundle, geometry: Geometry,
                opts: Mapping[str, Any]) -> Result:
    """Turn logits into the top-k labels, best first."""
    scores = activate(np.asarray(outputs[0], dtype=np.float32).reshape(-1),
                      bundle.manifest.output["activation"])
    top_k = min(opts["top_k"], scores.size)
    best = np.argpartition(-scores, top_k - 1)[:top_k]
    best = best[np.argsort(-scores[best], kind="stable")]
    predictions = [_prediction(int(i), float(scores[i]), bundle.labels) for i in best]
    return Result(body={"predictions": predictions})


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """Apply the manifest's activation to a vector of logits."""
    if activation == "softmax":
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    return logits


def _prediction(index: int, score: float, labels: list[str]) -> dict[str, Any]:
    label = labels[index] if index < len(labels) else str(index)
    return {"label": label, "index": index, "score": round(score, 6)}
