"""embed: an image in, a feature vector out (L2-normalized unless the manifest says not)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, one_of, positive
from appliance.tasks.base import Context, Result, Task


class Embed(Task):
    name = "embed"
    summary = "a feature vector that describes the picture, for search and similarity"
    output = {
        "dim": Field(int, check=positive),
        "normalize": Field(str, required=False, check=one_of("l2", "none"), default="l2"),
        "tensor": Field(str, required=False, default=""),
    }
    needs_labels = False
    options = ()
    answer = {"embedding": {"type": "array", "items": {"type": "number"}},
              "dim": {"type": "integer"}}
    gate = {"cosine_mean": 0.98, "cosine_min": 0.9}

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """Flatten the features and normalize them to unit length."""
        vector = normalize(np.asarray(ctx.output(outputs), dtype=np.float32).reshape(-1),
                           ctx.bundle.manifest.output["normalize"])
        return Result(body={"embedding": [round(float(v), 7) for v in vector],
                            "dim": int(vector.size)})

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The frame with a line saying how many numbers describe it."""
        from appliance import screens

        screen = screens.fill(frame, size)
        screens.banner(screen, f"{body.get('dim', 0)} numbers describe this picture")
        return screen

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """Cosine similarity of the candidate's vectors to the float model's."""
        cosines = [cosine(r[0].reshape(-1), c[0].reshape(-1))
                   for r, c in zip(reference, candidate, strict=True)]
        return {"cosine_mean": float(np.mean(cosines)), "cosine_min": float(np.min(cosines))}


def normalize(vector: np.ndarray, how: str) -> np.ndarray:
    """L2-normalize `vector` (a zero vector stays zero)."""
    if how != "l2":
        return vector
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; two zero vectors count as identical."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else float(np.allclose(a, b))
