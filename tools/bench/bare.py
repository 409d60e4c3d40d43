"""The limits the servers are measured against, in this process: onnxruntime with the box's
own decode and preprocessing and nothing else.

- `latency`: decode + preprocess + `session.run` in a loop, on a session with onnxruntime's
  own defaults (every core, spinning threads): the lowest latency a script gets;
- `limit`: one such loop per core, one intra-op thread each, all at once (separate
  processes, so no lock is shared): the most images a second this machine can classify;
- `decode_speed`: the fast image path (JPEG draft decode) against a full decode + resize.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from appliance import bundle as bundles
from appliance import config, imaging, tasks
from appliance.sessions import cpu_count, create_session

MAX_PIXELS = 50_000_000


def _session(bundle: bundles.Bundle, threads: int | None):
    """The box's session settings with `threads` intra-op threads; None: onnxruntime's own
    defaults (a thread per physical core, spinning), as a plain script gets them."""
    if threads is None:
        import onnxruntime as ort

        return ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    settings = config.load(env={}).models
    settings.intra_op_threads = threads
    return create_session(bundle.model_path, settings)


def _one(session, bundle: bundles.Bundle, photo: bytes) -> list[np.ndarray]:
    task = tasks.get(bundle.manifest.task)
    spec = bundle.manifest.input
    image = imaging.decode(photo, MAX_PIXELS, task.decode_hint(spec))
    tensor, _ = task.prepare(image, spec)
    return session.run(None, {spec.name: tensor})


def top_label(folder: Path, photo: bytes) -> str:
    """The top-1 label bare onnxruntime gives `photo`: every server must answer it too."""
    bundle = bundles.read(folder)
    logits = _one(_session(bundle, 1), bundle, photo)[0].reshape(-1)
    index = int(np.argmax(logits))
    return bundle.labels[index] if index < len(bundle.labels) else str(index)


def latency(folder: Path, photo: bytes, seconds: float) -> list[float]:
    """Milliseconds per decode + preprocess + run, one loop, onnxruntime's default session."""
    bundle = bundles.read(folder)
    session = _session(bundle, None)
    for _ in range(3):
        _one(session, bundle, photo)
    samples: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(samples) < 5:
        started = time.perf_counter()
        _one(session, bundle, photo)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _limit_worker(folder: str, photo: bytes, seconds: float, barrier, results) -> None:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    bundle = bundles.read(folder)
    session = _session(bundle, 1)
    _one(session, bundle, photo)
    barrier.wait()
    done, stop = 0, time.perf_counter() + seconds
    while time.perf_counter() < stop:
        _one(session, bundle, photo)
        done += 1
    results.put(done)


def limit(folder: Path, photo: bytes, seconds: float) -> dict:
    """Images a second with one single-threaded loop per core, run together."""
    cores = cpu_count()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(cores), context.Queue()
    workers = [context.Process(target=_limit_worker,
                               args=(str(folder), photo, seconds, barrier, results))
               for _ in range(cores)]
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    return {"loops": cores, "throughput_rps": sum(counts) / seconds}


def decode_speed(folder: Path, photo: bytes, repeats: int = 7) -> dict:
    """Median milliseconds of the box's image path and of a full decode + resize."""
    bundle = bundles.read(folder)
    task = tasks.get(bundle.manifest.task)
    spec = bundle.manifest.input

    def fast() -> None:
        task.prepare(imaging.decode(photo, MAX_PIXELS, task.decode_hint(spec)), spec)

    def full() -> None:
        import io

        image = Image.open(io.BytesIO(photo))
        image.load()
        task.prepare(image.convert("RGB"), spec)

    timings = {"fast_ms": _median_ms(fast, repeats), "full_ms": _median_ms(full, repeats)}
    return {**timings, "ratio": timings["fast_ms"] / timings["full_ms"]}


def _median_ms(work, repeats: int) -> float:
    work()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)
