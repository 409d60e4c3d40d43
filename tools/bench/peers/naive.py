"""The naive baseline: what an afternoon's script looks like. Flask's development server,
a full decode and resize with Pillow, `session.run` per request.

    python -m tools.bench.peers.naive PORT BUNDLE_DIR
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np
import onnxruntime as ort
from flask import Flask, jsonify, request
from PIL import Image


def create_app(folder: Path) -> Flask:
    manifest = json.loads((folder / "manifest.json").read_text())
    spec = manifest["input"]
    labels = (folder / "labels.txt").read_text().splitlines()
    session = ort.InferenceSession(str(folder / manifest["model"]["file"]),
                                   providers=["CPUExecutionProvider"])
    height, width = spec["size"]
    mean = np.array(spec.get("mean", [0, 0, 0]), dtype=np.float32)
    std = np.array(spec.get("std", [1, 1, 1]), dtype=np.float32)
    app = Flask(__name__)

    @app.post("/infer")
    def infer():
        image = Image.open(io.BytesIO(request.files["image"].read())).convert("RGB")
        pixels = np.asarray(image.resize((width, height)), dtype=np.float32)
        tensor = (pixels * spec.get("scale", 1.0) - mean) / std
        if spec["layout"] == "NCHW":
            tensor = tensor.transpose(2, 0, 1)
        logits = session.run(None, {spec["name"]: tensor[None].astype(np.float32)})[0][0]
        best = np.argsort(-logits)[:5]
        return jsonify(predictions=[{"label": labels[i], "score": float(logits[i])}
                                    for i in best])

    return app


def main(argv: list[str]) -> int:
    create_app(Path(argv[1])).run(host="127.0.0.1", port=int(argv[0]), threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
