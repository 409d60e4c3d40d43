"""The box as home and camera software calls it, against a live server on loopback:

- (a) `POST /v1/vision/detection` with a 320x320 JPEG as Frigate's deepstack detector sends it
  (a new connection per call, `api_key` in the form): p50/p99 at 1 and at 4 in flight, and
  how many exceed Frigate's 100 ms `api_timeout`;
- (b) Frigate's zmq detector (tools/frigate_clients.py) calling as fast as it can: calls a
  second, p50/p99, and whether every reply was a well-formed 20x6 answer;
- (c) bare onnxruntime on the same bundle and the same JPEG (the box's decode and
  preprocessing, then `session.run`), so (a) and (b) are also given as ratios to it;
- (d) `/metrics` series before and after requests naming random models on
  /v1/vision/custom/NAME, /v1/models/NAME/infer and /doods/detect: the count must not grow.

    python tools/bench/compat.py --out bench-out/compat.json [--models-dir models]
        [--model objects] [--requests 300] [--zmq-seconds 30] [--random 10000]

The rate limit is off in the server it starts (auth.rate_per_minute 0): this measures the
box, not the limiter (docs/compat.md says when Frigate needs it raised).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

import numpy as np
from PIL import Image

from appliance import bundle as bundles
from appliance import config, imaging, tasks
from appliance.sessions import cpu_count, create_session
from tools import frigate_clients
from tools.bench.client import multipart, percentiles
from tools.latency import cpu_name
from tools.live_server import LiveServer, free_port

FRIGATE_TIMEOUT_MS = 100.0
TOKEN = "bench-compat-" + secrets.token_hex(8)


def frigate_tensor(size: int = 320) -> np.ndarray:
    """Frigate's model input for a real photo (scikit-image's astronaut: a person)."""
    from skimage import data

    return frigate_clients.model_input(Image.fromarray(data.astronaut()), size)


def serve(models_dir: Path, state_dir: Path, model: str, zmq_endpoint: str) -> LiveServer:
    """The live server: `model` behind DeepStack, DOODS and the zmq listener, a token set."""
    env = {"APPLIANCE_AUTH_INFER_TOKEN": TOKEN, "APPLIANCE_AUTH_RATE_PER_MINUTE": "0",
           "APPLIANCE_COMPAT_DETECTION_MODEL": model,
           "APPLIANCE_COMPAT_ZMQ_ENDPOINT": zmq_endpoint,
           "APPLIANCE_COMPAT_ZMQ_ALLOW": "127.0.0.1"}
    live = LiveServer(models_dir, state_dir, env=env)
    live.wait_ready()
    return live


def detection_latency(url: str, tensor: np.ndarray, requests: int, in_flight: int) -> dict:
    """(a): `requests` calls of Frigate's deepstack detector, `in_flight` at a time, with a
    long timeout so slow answers are measured rather than cut (each is then compared with
    Frigate's 100 ms)."""
    import requests as http

    client = frigate_clients.DeepstackDetector(url + "/v1/vision/detection", TOKEN)
    jpeg, width, height = client.jpeg(tensor)
    left, lock = iter(range(requests)), threading.Lock()
    samples: list[float] = []
    statuses: Counter[str] = Counter()
    rows_ok = [0]

    def worker() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            started = time.perf_counter()
            try:
                response = http.post(client.api_url, data={"api_key": TOKEN},
                                     files={"image": jpeg}, timeout=10)
                answer = response.json()
                status = str(response.status_code)
            except (http.RequestException, ValueError) as exc:
                answer, status = {}, type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            rows = client.rows(answer, width, height)  # Frigate's walk: IndexError past 20
            with lock:
                samples.append(elapsed)
                statuses[status] += 1
                rows_ok[0] += frigate_clients.well_formed(rows)

    _run_threads(worker, in_flight)
    return {"in_flight": in_flight, "requests": len(samples), "statuses": dict(statuses),
            **_ms(samples), "over_frigate_timeout": sum(s > FRIGATE_TIMEOUT_MS for s in samples),
            "frigate_rows_well_formed": rows_ok[0], "jpeg_bytes": len(jpeg)}


def zmq_rate(endpoint: str, tensor: np.ndarray, seconds: float) -> dict:
    """(b): Frigate's zmq detector (200 ms timeouts) calling back to back for `seconds`."""
    samples: list[float] = []
    well_formed = found = 0
    with frigate_clients.ZmqDetector(endpoint, "/config/model_cache/ssd.onnx") as detector:
        ready = detector.ready
        stop = time.perf_counter() + seconds
        began = time.perf_counter()
        while time.perf_counter() < stop:
            started = time.perf_counter()
            rows = detector.detect_raw(tensor)
            samples.append((time.perf_counter() - started) * 1000)
            well_formed += frigate_clients.well_formed(rows)
            found += int(np.count_nonzero(rows[:, 1]))
        took = time.perf_counter() - began
        outcomes = dict(detector.outcomes)
    return {"ready": ready, "seconds": round(took, 2), "calls": len(samples),
            "calls_per_s": round(len(samples) / took, 1), **_ms(samples),
            "well_formed": well_formed,
            "detections_per_call": round(found / max(1, len(samples)), 2),
            "over_200ms_timeout": outcomes.get("timeout", 0), "outcomes": outcomes}


def bare(model_dir: Path, tensor: np.ndarray, runs: int) -> dict:
    """(c): the same JPEG through the box's decode and preprocessing and onnxruntime, in this
    process, on a session as the box runs a lone request (every core, spinning)."""
    bundle = bundles.read(model_dir)
    task, spec = tasks.get(bundle.manifest.task), bundle.manifest.input
    jpeg = frigate_clients.DeepstackDetector("").jpeg(tensor)[0]
    session = create_session(bundle.model_path, config.load(env={}).models,
                             threads=cpu_count(), spin=True)
    prepared, _ = task.prepare(imaging.decode(jpeg, 50_000_000, task.decode_hint(spec)), spec)
    for _ in range(5):
        session.run(None, {spec.name: prepared})
    whole, run_only = [], []
    for _ in range(runs):
        started = time.perf_counter()
        image = imaging.decode(jpeg, 50_000_000, task.decode_hint(spec))
        array, _ = task.prepare(image, spec)
        ran = time.perf_counter()
        session.run(None, {spec.name: array})
        done = time.perf_counter()
        whole.append((done - started) * 1000)
        run_only.append((done - ran) * 1000)
    return {"runs": runs, "decode_prepare_run": _ms(whole), "run_only": _ms(run_only)}


def metrics_series(url: str, port: int, count: int, threads: int = 4) -> dict:
    """(d): series in /metrics before and after `count` requests naming random models."""
    photo = frigate_clients.DeepstackDetector("").jpeg(frigate_tensor(64))[0]
    form, form_type = multipart("image", photo)
    doods = {"data": base64.b64encode(photo).decode()}

    def one(connection: http.client.HTTPConnection, index: int) -> int:
        name = "rnd-" + secrets.token_hex(6)
        kind = index % 3
        if kind == 0:
            path, body, kind_type = f"/v1/vision/custom/{name}", form, form_type
        elif kind == 1:
            path, body, kind_type = f"/v1/models/{name}/infer", photo, "image/jpeg"
        else:
            path, kind_type = "/doods/detect", "application/json"
            body = json.dumps({**doods, "detector_name": name}).encode()
        headers = {"Content-Type": kind_type, "Authorization": f"Bearer {TOKEN}"}
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        return response.status

    before = _series(url)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for index in range(3):  # one of each kind: the one fixed series for strangers' names
        one(connection, index)
    connection.close()
    warm = _series(url)
    statuses: Counter[int] = Counter()
    left, lock = iter(range(count)), threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (index := _next(left, lock)) is not None:
            status = one(connection, index)
            with lock:
                statuses[status] += 1
        connection.close()

    started = time.perf_counter()
    _run_threads(worker, threads)
    after = _series(url)
    return {"requests": count, "seconds": round(time.perf_counter() - started, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "series_before": before, "series_after_one_of_each": warm,
            "series_after": after, "grew": after != warm}


def _series(url: str) -> int:
    connection = http.client.HTTPConnection(url.split("//")[1], timeout=30)
    connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = connection.getresponse().read().decode()
    connection.close()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _next(left, lock) -> int | None:
    with lock:
        return next(left, None)


def _run_threads(work, count: int) -> None:
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _ms(samples: list[float]) -> dict[str, float]:
    found = percentiles(samples)
    return {key: round(value, 2) for key, value in found.items()}


def paths(models_dir: Path, model: str, requests: int, zmq_seconds: float,
          bare_runs: int = 300, random: int = 0) -> dict:
    """(a), (b) and (c) against one server started here, and (d) when `random` > 0: the
    calls, bare onnxruntime, and each call's p50 (and the zmq rate) as a ratio to bare."""
    tensor = frigate_tensor()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as state, \
            serve(models_dir, Path(state), model, endpoint) as live:
        http = [detection_latency(live.url, tensor, requests, n) for n in (1, 4)]
        zmq = zmq_rate(endpoint, tensor, zmq_seconds)
        series = metrics_series(live.url, live.port, random) if random else None
        rss = live.rss_mb()
    alone = bare(models_dir / model, tensor, bare_runs)
    base = alone["decode_prepare_run"]
    ratios = {f"http_{h['in_flight']}_in_flight_p50_over_bare": round(h["p50_ms"] /
                                                                       base["p50_ms"], 2)
              for h in http}
    ratios["zmq_p50_over_bare"] = round(zmq["p50_ms"] / base["p50_ms"], 2)
    ratios["zmq_calls_per_s_over_bare"] = round(zmq["calls_per_s"] * base["p50_ms"] / 1000, 2)
    found = {"model": model, "frigate_timeout_ms": FRIGATE_TIMEOUT_MS, "detection": http,
             "zmq": zmq, "bare_onnxruntime": alone, "ratios": ratios,
             "server_rss_mb": round(rss, 1)}
    return found | ({"metrics": series} if series is not None else {})


def run(models_dir: Path, model: str, requests: int, zmq_seconds: float, random: int,
        bare_runs: int = 300) -> dict:
    """Every measurement, against one server started here, as one JSON-able dict."""
    found = paths(models_dir, model, requests, zmq_seconds, bare_runs, random)
    return {"model": model, "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                                        "python": platform.python_version()}, **found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", default="objects")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--zmq-seconds", type=float, default=30.0)
    parser.add_argument("--random", type=int, default=10_000)
    parser.add_argument("--bare-runs", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run(args.models_dir, args.model, args.requests, args.zmq_seconds, args.random,
                 args.bare_runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if not result["metrics"]["grew"] and _all_well_formed(result) else 1


def _all_well_formed(result: dict) -> bool:
    zmq = result["zmq"]
    return zmq["well_formed"] == zmq["calls"] and all(
        h["frigate_rows_well_formed"] == h["requests"] for h in result["detection"])


if __name__ == "__main__":
    sys.exit(main())
