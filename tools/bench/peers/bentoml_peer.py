"""BentoML's idiomatic service: `@bentoml.service` with a batchable API taking the uploaded
image as a PIL image (BentoML's multipart handling) and answering JSON.

Run by `tools/bench/servers.py` as `bentoml serve tools.bench.peers.bentoml_peer:Classifier` in its
own virtualenv, with BENTOML_DO_NOT_TRACK=true and the bundle in BENCH_BUNDLE.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
from PIL.Image import Image

from tools.bench.peers import common

BATCH = int(os.environ.get("BENCH_MAX_BATCH", "8"))


@bentoml.service(workers=1, traffic={"timeout": 60})
class Classifier:
    """The bundle in BENCH_BUNDLE, adaptive batching up to BENCH_MAX_BATCH."""

    def __init__(self) -> None:
        self.model = common.Classifier(os.environ["BENCH_BUNDLE"])

    @bentoml.api(batchable=True, max_batch_size=BATCH, max_latency_ms=10_000)
    def classify(self, images: list[Image]) -> list[list[dict[str, Any]]]:
        return self.model.predict(images)
