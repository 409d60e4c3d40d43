"""One bundle's classifier as a plain function, for the peer servers to wrap.

Imports only the appliance's light modules (bundle, imaging, tasks) and onnxruntime, so it
runs in any peer's virtualenv with the checkout on PYTHONPATH.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from appliance import bundle as bundles
from appliance import imaging, tasks
from appliance.tasks.base import Context

MAX_PIXELS = 50_000_000


class Classifier:
    """A classify bundle on one onnxruntime session with the box's session options."""

    def __init__(self, folder: str | os.PathLike) -> None:
        import onnxruntime as ort

        self.bundle = bundles.read(folder)
        self.spec = self.bundle.manifest.input
        self.task = tasks.get(self.bundle.manifest.task)
        options = ort.SessionOptions()
        options.intra_op_num_threads = len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.bundle.model_path), options,
                                            providers=["CPUExecutionProvider"])

    def tensor(self, image: bytes | Image.Image) -> np.ndarray:
        """Decode (JPEG draft mode included) and preprocess one image: a batch of one."""
        hint = self.task.decode_hint(self.spec)
        if isinstance(image, bytes | bytearray):
            picture = imaging.decode(bytes(image), MAX_PIXELS, hint)
        else:
            if image.format == "JPEG" and getattr(image, "tile", None):
                image.draft("RGB", hint)  # still lazy: decode at the reduced scale
            picture = imaging.to_rgb(image)
        return self.task.prepare(picture, self.spec)[0]

    def predict(self, images: list[bytes | Image.Image]) -> list[list[dict[str, Any]]]:
        """Top-5 labels for each image, in one `session.run` for the whole list."""
        batch = np.concatenate([self.tensor(image) for image in images])
        if not self.spec.dynamic_batch and len(images) > 1:
            rows = [self.session.run(None, {self.spec.name: row[None]})[0] for row in batch]
            logits = np.concatenate(rows)
        else:
            logits = self.session.run(None, {self.spec.name: batch})[0]
        return [self._top5(row) for row in logits]

    def _top5(self, logits: np.ndarray) -> list[dict[str, Any]]:
        # No geometry: a classifier's answer does not depend on it.
        ctx = Context(self.bundle, None, {"top_k": 5})
        result = self.task.postprocess([logits[None]], ctx)
        return result.body["predictions"]
