"""onnxruntime sessions behind a bounded queue: one runner per bundle.

Each runner owns one session with all intra-op threads and one worker thread that drains its
queue, so requests never oversubscribe a small CPU. A full queue answers 503 Busy at once
rather than letting latency grow without bound. For models with a dynamic batch dimension the
worker can group waiting requests into one `session.run` (micro-batching, off by default).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from appliance.errors import BundleError, Busy, ConfigError, ModelLoadError, Unavailable

if TYPE_CHECKING:
    import onnxruntime

    from appliance.bundle import Bundle
    from appliance.config import Models

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_STOP = object()


def cpu_count() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def choose_providers(setting: str, available: Sequence[str]) -> list[str]:
    """Execution providers for `setting` ('auto' or names like 'cuda,cpu').

    Raises ConfigError naming a provider that is unknown or not available in this build.
    """
    if setting.strip() == "auto":
        return [p for p in AUTO_ORDER if p in available]
    chosen = []
    for name in (n.strip().lower() for n in setting.split(",") if n.strip()):
        provider = PROVIDER_NAMES.get(name)
        if provider is None:
            raise ConfigError(f"setting 'models.providers': unknown provider {name!r}; "
                              f"use auto or {', '.join(PROVIDER_NAMES)}")
        if provider not in available:
            raise ConfigError(f"setting 'models.providers': {name} is not available in this "
                              f"onnxruntime build (available: {', '.join(available)})")
        chosen.append(provider)
    return chosen or ["CPUExecutionProvider"]


def create_session(model_path: str, settings: Models) -> onnxruntime.InferenceSession:
    """One onnxruntime session with providers and threads from the settings.

    Raises ModelLoadError with onnxruntime's reason when the model cannot be loaded.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads or cpu_count()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    providers = choose_providers(settings.providers, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
        raise ModelLoadError(f"onnxruntime cannot load {model_path}: {exc}") from exc


@dataclass
class _Job:
    tensor: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: BaseException | None = None


class Runner:
    """Runs one bundle's model: a session, a bounded queue and a worker thread.

    Thread-safe: any number of request threads may call `run` at once.
    """

    def __init__(self, bundle: Bundle, settings: Models, session=None) -> None:
        self.bundle = bundle
        self.settings = settings
        self.session = session or create_session(bundle.model_path, settings)
        self.input_name, self.input_shape = check_signature(self.session, bundle)
        self.batching = bundle.manifest.input.dynamic_batch and settings.max_batch > 1
        self.last_progress = time.monotonic()
        self.busy_since: float | None = None  # set while a job runs: a wedge shows here
        self._queue: queue.Queue = queue.Queue(maxsize=settings.queue_size)
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name=f"engine-{bundle.name}",
                                        daemon=True)
        self._worker.start()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def stuck(self, now: float, limit: float) -> bool:
        """True when one job has been running for more than `limit` seconds."""
        started = self.busy_since
        return started is not None and now - started > limit

    def warm_up(self) -> None:
        """Run the model once on zeros so the first real request is not slow."""
        self.run(np.zeros(self.input_shape, dtype=self._input_dtype()))

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor (batch of one) and return its outputs.

        Raises Busy (queue full), Unavailable (closed or timed out) or ModelLoadError
        (onnxruntime failed on this input).
        """
        if self._closed:
            raise Unavailable(f"model {self.bundle.name} is shutting down: retry in a moment")
        job = _Job(tensor)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Busy(f"model {self.bundle.name} has {self.settings.queue_size} requests "
                       "waiting: retry in a second", headers={"Retry-After": "1"}) from None
        if not job.done.wait(self.settings.timeout_s):
            raise Unavailable(f"model {self.bundle.name} did not answer within "
                              f"{self.settings.timeout_s:g} s: retry later",
                              headers={"Retry-After": "5"})
        if job.error is not None:
            raise job.error
        return job.outputs

    def close(self) -> None:
        """Stop the worker after the jobs already queued have run."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._worker.join(timeout=self.settings.timeout_s)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _input_dtype(self) -> type:
        return np.uint8 if self.bundle.manifest.input.dtype == "uint8" else np.float32

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            self.busy_since = time.monotonic()
            jobs = self._gather(job) if self.batching else [job]
            self._execute(jobs)
            self.last_progress = time.monotonic()
            self.busy_since = None

    def _gather(self, first: _Job) -> list[_Job]:
        jobs = [first]
        deadline = time.monotonic() + self.settings.max_wait_ms / 1000
        while len(jobs) < self.settings.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is _STOP:
                self._queue.put(_STOP)  # seen again by the loop after this batch
                break
            jobs.append(job)
        return jobs

    def _execute(self, jobs: list[_Job]) -> None:
        if len(jobs) > 1:
            try:
                batch = np.concatenate([job.tensor for job in jobs])
                outputs = self._session_run(batch)
            except Exception:
                # One bad input must not fail its batch-mates: run each alone.
                for job in jobs:
                    self._execute([job])
                return
            start = 0
            for job in jobs:  # each job gets back as many rows as it sent
                end = start + job.tensor.shape[0]
                job.outputs = [out[start:end] for out in outputs]
                job.done.set()
                start = end
            return
        job = jobs[0]
        try:
            job.outputs = self._session_run(job.tensor)
        except BaseException as exc:  # handed to the waiting request thread
            job.error = exc
        job.done.set()

    def _session_run(self, tensor: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(None, {self.input_name: tensor})
        except Exception as exc:
            raise ModelLoadError(f"model {self.bundle.name} failed on this input: {exc}") from exc


def check_signature(session, bundle: Bundle) -> tuple[str, tuple[int, ...]]:
    """Check that the model's input matches the manifest; return its name and concrete shape.

    Raises BundleError naming what differs.
    """
    spec = bundle.manifest.input
    inputs = {i.name: i for i in session.get_inputs()}
    if spec.name not in inputs:
        raise BundleError(f"{bundle.name}/manifest.json.input.name: the model has no input "
                          f"{spec.name!r} (it has {', '.join(inputs)})")
    height, width = spec.size
    expected = (1, 3, height, width) if spec.layout == "NCHW" else (1, height, width, 3)
    shape = inputs[spec.name].shape
    if len(shape) != 4 or any(isinstance(d, int) and d != e
                              for d, e in zip(shape[1:], expected[1:], strict=True)):
        raise BundleError(f"{bundle.name}/manifest.json.input: the model's input "
                          f"{spec.name} has shape {shape}, the manifest implies {expected}")
    dynamic = not isinstance(shape[0], int)
    if spec.dynamic_batch and not dynamic:
        raise BundleError(f"{bundle.name}/manifest.json.input.dynamic_batch: true, but the "
                          f"model's batch dimension is fixed at {shape[0]}")
    return spec.name, expected
