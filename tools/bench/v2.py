"""v2 (Open Inference Protocol) latency against v1 for the same model and picture, side by
side in one run: v1 with the JPEG, v2 with the preprocessed tensor as binary data and as JSON.

    python tools/bench/v2.py [--model efficientnet-lite0] [--models-dir models] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

from appliance import bundle as bundles
from appliance import tasks
from tools.bench.client import multipart
from tools.live_server import LiveServer


def cases(model_dir: Path) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """The three requests: path, body and headers."""
    from PIL import Image
    from skimage import data

    bundle = bundles.read(model_dir)
    image = Image.fromarray(data.chelsea())
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    tensor, _ = tasks.get(bundle.manifest.task).prepare(image, bundle.manifest.input)
    name, spec = bundle.name, bundle.manifest.input
    body, content_type = multipart("image", buffer.getvalue())
    header = json.dumps({"inputs": [{"name": spec.name, "shape": list(tensor.shape),
                                     "datatype": "FP32",
                                     "parameters": {"binary_data_size": tensor.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    as_json = json.dumps({"inputs": [{"name": spec.name, "shape": list(tensor.shape),
                                      "datatype": "FP32",
                                      "data": tensor.reshape(-1).tolist()}]}).encode()
    return {"v1 multipart JPEG": (f"/v1/models/{name}/infer", body,
                                  {"Content-Type": content_type}),
            "v2 binary tensor": (f"/v2/models/{name}/infer", header + tensor.tobytes(),
                                 {"Content-Type": "application/octet-stream",
                                  "Inference-Header-Content-Length": str(len(header))}),
            "v2 JSON tensor": (f"/v2/models/{name}/infer", as_json,
                               {"Content-Type": "application/json"})}


def measure(port: int, requests: dict, rounds: int, per_round: int) -> dict[str, list[float]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times: dict[str, list[float]] = {key: [] for key in requests}
    for _ in range(rounds):
        for key, (path, body, headers) in requests.items():
            for _ in range(per_round):
                started = time.perf_counter()
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{key}: HTTP {response.status}")
                times[key].append((time.perf_counter() - started) * 1000)
    connection.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=30)
    args = parser.parse_args(argv)
    models = Path(args.models_dir).resolve()
    requests = cases(models / args.model)
    with tempfile.TemporaryDirectory() as state, \
            LiveServer(models, Path(state), env={"APPLIANCE_AUTH_RATE_PER_MINUTE": "0"}) as live:
        live.wait_ready()
        times = measure(live.port, requests, args.rounds, args.per_round)
    print("| request | body | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    for key, samples in times.items():
        ordered = sorted(samples)
        print(f"| {key} | {len(requests[key][1]):,} B | {statistics.median(samples):.2f} | "
              f"{ordered[int(0.95 * (len(ordered) - 1))]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
