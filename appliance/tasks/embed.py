"""embed: an image in, a feature vector out (L2-normalized unless the manifest says not)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.schema import Field, one_of, positive
from appliance.tasks.base import Result, parse_options
from appliance.tasks.preprocess import Geometry, decode_hint, prepare

if TYPE_CHECKING:
    from appliance.bundle import Bundle

__all__ = ["OUTPUT", "decode_hint", "options", "postprocess", "prepare"]

OUTPUT = {
    "dim": Field(int, check=positive),
    "normalize": Field(str, required=False, check=one_of("l2", "none"), default="l2"),
    "tensor": Field(str, required=False, default=""),
}
NEEDS_LABELS = False


def options(query: Mapping[str, str], bundle: Bundle) -> dict[str, Any]:
    """embed takes no options. Raises BadRequest for any."""
    return parse_options(query, {})


def postprocess(outputs: list[np.ndarray], bundle: Bundle, geometry: Geometry,
                opts: Mapping[str, Any]) -> Result:
    """Flatten the features and normalize them to unit length."""
    vector = normalize(np.asarray(outputs[0], dtype=np.float32).reshape(-1),
                       bundle.manifest.output["normalize"])
    return Result(body={"embedding": [round(float(v), 7) for v in vector],
                        "dim": int(vector.size)})


def normalize(vector: np.ndarray, how: str) -> np.ndarray:
    """L2-normalize `vector` (a zero vector stays zero)."""
    if how != "l2":
        return vector
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
