"""onnxruntime sessions behind a bounded queue: one runner per bundle.

Each runner has plain sessions (`models.sessions`, by default one thread each) drained by
worker threads from a shared queue (by default a worker per core: onnxruntime runs one
session's calls at once), and for a small model an idle session: every core with spinning
threads, used at once in the request's own thread when a request finds the model idle. So
one request at a time gets the lowest latency, and a crowd gets the most throughput, because
the plain sessions' threads neither spin nor synchronize: each run takes one core, and the
operating system shares the cores between runs, decoding and the web server. A full queue
answers 503 Busy at once rather than letting latency grow without bound. For models with a
dynamic batch dimension a worker can group the requests waiting when it frees up into one
`session.run` (micro-batching): it never waits for a batch to fill unless `max_wait_ms` says so.

Every request has a deadline, `models.timeout_s` after it reached the runner: a run still
going then is terminated (appliance.deadlines) and answered 504, a job still queued then is
dropped unrun, so a model that would run for ever gives its CPU back. Each overrun is counted
and handed to `on_overrun` (the registry reports it and stops serving a repeat offender).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from appliance.deadlines import Deadlines, Ticket
from appliance.errors import Busy, DeadlineExceeded, ModelRunError, Unavailable
from appliance.sessions import (
    Plans,
    check_signature,
    cpu_count,
    create_session,
    input_dtype,
    layout,
    open_sessions,
    workers,
)

if TYPE_CHECKING:
    from appliance.bundle import Bundle
    from appliance.config import Models

log = logging.getLogger(__name__)

_STOP = object()
# How long past its deadline a request waits for its terminated run to hand back the error
# (onnxruntime needs milliseconds; one node that cannot be interrupted takes longer, and
# then the request gives up with 503 while the watchdog sees the run as stuck).
STOP_GRACE_S = 1.0
# How long close(cancel=True) waits for terminated runs to return.
# A stopped run counts as the model's overrun only when the run itself (not the wait in the
# queue before it) took at least this share of models.timeout_s.
OVERRUN_SHARE = 0.5
CANCEL_WAIT_S = 5.0


@dataclass
class _Job:
    tensor: np.ndarray
    deadline: float  # time.monotonic(): the run is terminated, or the job dropped, then
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: BaseException | None = None
    abandoned: bool = False  # its request has given up: never start it


class Runner:
    """Runs one bundle's model: its sessions, a bounded queue and its workers (see `workers`).

    Thread-safe: any number of request threads may call `run` at once. `deadlines` is the
    process's watcher (the registry shares one); without it the runner keeps its own.
    """

    def __init__(self, bundle: Bundle, settings: Models, session=None,
                 deadlines: Deadlines | None = None,
                 on_overrun: Callable[[Runner], None] | None = None,
                 plans: Plans | None = None) -> None:
        self.bundle = bundle
        self.settings = settings
        self._own_deadlines = deadlines is None
        self._deadlines = deadlines or Deadlines()
        self.on_overrun = on_overrun
        self.overruns = 0  # runs stopped at their deadline (runs stopped together: one)
        self._last_overrun = -math.inf  # when the last counted overrun was stopped
        try:
            self.sessions, self.idle_session = ([session], None) if session is not None \
                else open_sessions(bundle, settings, self._deadlines, plans)
            # The bundle's other graphs: one session each on every core, without an arena
            # (their inputs change size with every picture), run in the request's thread.
            self.graphs = {name: create_session(bundle.graph_path(name), settings,
                                                threads=cpu_count(), spin=False, arena=False)
                           for name in bundle.manifest.graphs}
        except BaseException:
            if self._own_deadlines:
                self._deadlines.close()
            raise
        self.session = self.sessions[0]
        self.input_name, self.input_shape = check_signature(self.session, bundle)
        runs = workers(self.sessions, settings)
        log.info("model %s: %s", bundle.name, layout(self.sessions, self.idle_session, runs))
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.max_batch, self.max_wait_ms = batching(bundle, settings)
        self.batching = self.max_batch > 1
        self.last_progress = time.monotonic()
        # When each worker's current job started (None: idle): a wedge shows here. The last
        # slot is for a job run on the idle session in its caller's thread.
        self._busy: list[float | None] = [None] * (runs + 1)
        self._idle_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._admitted = 0  # requests between admit() and their answer, decoding included
        self._queue: queue.Queue = queue.Queue(maxsize=settings.queue_size)
        self._closed = False
        self._cancelled = False
        self._stop_sent = False
        self._tickets: set[Ticket] = set()  # runs in progress, terminated by a cancel
        self._state_lock = threading.Lock()
        self._workers = [threading.Thread(target=self._serve, args=(i,), daemon=True,
                                          name=f"engine-{bundle.name}-{i}")
                         for i in range(runs)]
        for worker in self._workers:
            worker.start()

    @property
    def busy_since(self) -> float | None:
        """When the longest-running current job started; None when every worker is idle."""
        started = [t for t in self._busy if t is not None]
        return min(started) if started else None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def stuck(self, now: float, limit: float) -> bool:
        """True when one job has been running for more than `limit` seconds."""
        started = self.busy_since
        return started is not None and now - started > limit

    def warm_up(self) -> None:
        """Run the model once on zeros so the first real request is not slow.

        Raises what `run` raises (DeadlineExceeded for a model that overruns on zeros).
        """
        zeros = np.zeros(self.input_shape, dtype=input_dtype(self.bundle))
        self._enqueue(zeros)
        if self.idle_session is not None:
            self._session_run(self.idle_session, zeros, self._deadline())

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor (batch of one) and return its outputs.

        Raises Busy (queue full), Unavailable (closed, cancelled, or no answer in time),
        DeadlineExceeded (the run passed models.timeout_s and was stopped) or ModelRunError
        (onnxruntime failed on this input).
        """
        if self._closed:
            raise Unavailable(f"model {self.bundle.name} is shutting down: retry in a moment")
        if self.idle_session is not None and self._idle_lock.acquire(blocking=False):
            try:
                if self._model_idle():
                    return self._run_inline(tensor)
            finally:
                self._idle_lock.release()
        return self._enqueue(tensor)

    def run_graph(self, name: str, tensor: np.ndarray, deadline: float) -> list[np.ndarray]:
        """Run the bundle's other graph `name` on `tensor` in the caller's thread, under the
        same cancel as the main graph and the request's `deadline` (one for all the runs of
        a request: a page of text once ran 100 recogniser runs of up to 30 s each).

        Raises KeyError for a graph the bundle does not hold, DeadlineExceeded once the
        deadline has passed, and what `run` raises.
        """
        if self._closed:
            raise Unavailable(f"model {self.bundle.name} is shutting down: retry in a moment")
        if time.monotonic() >= deadline:
            # The picture's doing (a page of small text), not the model's: not an overrun.
            raise DeadlineExceeded(f"model {self.bundle.name} did not finish this picture "
                                   f"within {self.settings.timeout_s:g} s (models.timeout_s): "
                                   "send a smaller picture, or one with less text")
        session = self.graphs[name]
        return self._session_run(session, tensor, deadline, session.get_inputs()[0].name)

    def deadline(self) -> float:
        """When a request starting now must be done (models.timeout_s from now)."""
        return self._deadline()

    def _deadline(self) -> float:
        return time.monotonic() + self.settings.timeout_s

    def _enqueue(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run `tensor` through the queue and a worker; waits for the answer."""
        job = _Job(tensor, self._deadline())
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Busy(f"model {self.bundle.name} has {self.settings.queue_size} requests "
                       "waiting: retry in a second", headers={"Retry-After": "1"}) from None
        if not job.done.wait(self.settings.timeout_s + STOP_GRACE_S):
            job.abandoned = True
            raise Unavailable(f"model {self.bundle.name} did not answer within "
                              f"{self.settings.timeout_s:g} s: retry later",
                              headers={"Retry-After": "5"})
        if job.error is not None:
            raise job.error
        return job.outputs

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Around a whole request, decoding included: tells the runner whether a request
        that reaches `run` is alone, or one of a crowd whose others are still decoding."""
        with self._count_lock:
            self._admitted += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._admitted -= 1

    def _model_idle(self) -> bool:
        """A lone request: no other admitted, nothing queued, no worker busy."""
        return (self._admitted <= 1 and self._queue.empty()
                and all(t is None for t in self._busy))

    def _run_inline(self, tensor: np.ndarray) -> list[np.ndarray]:
        # In the caller's thread: no hand-over to a worker and back.
        self._busy[-1] = time.monotonic()
        try:
            return self._session_run(self.idle_session, tensor, self._deadline())
        finally:
            self.last_progress = time.monotonic()
            self._busy[-1] = None

    def close(self, cancel: bool = False) -> None:
        """Stop the workers after the jobs already queued have run; with `cancel`, at once:
        runs in progress are terminated and queued jobs answered Unavailable (a model
        removed, or the box stopping after its drain). Waits a bounded time for the runs."""
        with self._state_lock:
            if self._closed and (self._cancelled or not cancel):
                return
            self._closed = True
            self._cancelled = cancel
            tickets = list(self._tickets) if cancel else []
            send_stop, self._stop_sent = not self._stop_sent, True
        for ticket in tickets:
            ticket.cancel()
        if cancel:
            self._drop_queued()
        if send_stop:
            for _ in self._workers:
                self._queue.put(_STOP)
        wait = CANCEL_WAIT_S if cancel else self.settings.timeout_s + STOP_GRACE_S
        self._wait_for_runs(time.monotonic() + wait)
        if self._own_deadlines:
            self._deadlines.close()

    def _drop_queued(self) -> None:
        """Answer every job still queued with Unavailable, keeping the stop markers."""
        stops = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stops += 1
                continue
            job.error = self._stopped_error()
            job.done.set()
        for _ in range(stops):
            self._queue.put(_STOP)

    def _wait_for_runs(self, deadline: float) -> None:
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join(timeout=max(0.0, deadline - time.monotonic()))
        while self._busy[-1] is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # an inline run in a request thread: nothing to join

    def _stopped_error(self) -> Unavailable:
        return Unavailable(f"model {self.bundle.name} was removed or the box is stopping: "
                           "its run was stopped; retry, or pick another model (GET "
                           "/v1/models)", headers={"Retry-After": "2"})

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve(self, index: int) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            self._busy[index] = time.monotonic()
            jobs = [j for j in (self._gather(job) if self.batching else [job]) if self._live(j)]
            if jobs:
                self._execute(self.sessions[index % len(self.sessions)], jobs)
            self.last_progress = time.monotonic()
            self._busy[index] = None

    def _live(self, job: _Job) -> bool:
        """Whether a dequeued job should still run: not when its request has given up or
        its deadline passed while it waited (it is answered here instead)."""
        if not job.abandoned and time.monotonic() < job.deadline:
            return True
        job.error = Unavailable(f"model {self.bundle.name} did not start this request "
                                f"within {self.settings.timeout_s:g} s: retry later",
                                headers={"Retry-After": "5"})
        job.done.set()
        return False

    def _gather(self, first: _Job) -> list[_Job]:
        """`first` and the jobs already waiting (or arriving within max_wait_ms)."""
        jobs = [first]
        deadline = time.monotonic() + self.max_wait_ms / 1000
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is _STOP:
                self._queue.put(_STOP)  # seen again by the loop after this batch
                break
            jobs.append(job)
        return jobs

    def _execute(self, session, jobs: list[_Job]) -> None:
        deadline = max(job.deadline for job in jobs)
        if len(jobs) > 1:
            try:
                batch = np.concatenate([job.tensor for job in jobs])
                outputs = self._session_run(session, batch, deadline)
            except (DeadlineExceeded, Unavailable) as exc:
                for job in jobs:  # stopped: running them again would only overrun again
                    job.error = exc
                    job.done.set()
                return
            except Exception:
                # One bad input must not fail its batch-mates: run each alone.
                for job in jobs:
                    self._execute(session, [job])
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
            job.outputs = self._session_run(session, job.tensor, deadline)
        except BaseException as exc:  # handed to the waiting request thread
            job.error = exc
        job.done.set()

    def _session_run(self, session, tensor: np.ndarray, deadline: float,
                     input_name: str | None = None) -> list[np.ndarray]:
        """One `session.run` (on the main graph's input unless `input_name` says another),
        terminated at `deadline` or by a cancel.

        Raises DeadlineExceeded, Unavailable (cancelled) or ModelRunError.
        """
        with self._deadlines.watch(deadline) as ticket:
            with self._state_lock:
                self._tickets.add(ticket)
                if self._cancelled:
                    ticket.cancel()
            started = time.monotonic()
            try:
                return session.run(None, {input_name or self.input_name: tensor},
                                   ticket.options)
            except Exception as exc:
                raise self._run_error(ticket, exc, time.monotonic() - started) from None
            finally:
                with self._state_lock:
                    self._tickets.discard(ticket)

    def _run_error(self, ticket: Ticket, exc: Exception, ran_s: float) -> Exception:
        if ticket.cancelled:
            return self._stopped_error()
        if not ticket.expired:
            return ModelRunError(f"model {self.bundle.name} failed on this input: {exc}")
        if ran_s < self.settings.timeout_s * OVERRUN_SHARE:
            # Most of the time went waiting in the queue behind others: a busy box, not a
            # model at fault, so it is not counted against the model.
            return DeadlineExceeded(f"model {self.bundle.name} could not answer within "
                                    f"{self.settings.timeout_s:g} s (models.timeout_s): the "
                                    "box is busy; retry later", headers={"Retry-After": "5"})
        with self._state_lock:
            # Runs stopped together (a worker per core, one stall of the box) are one
            # overrun: counted each, one stall could take the model out of service.
            overlapping = time.monotonic() - ran_s < self._last_overrun
            if not overlapping:
                self.overruns += 1
                self._last_overrun = time.monotonic()
        stopped = (f"model {self.bundle.name} did not finish within "
                   f"{self.settings.timeout_s:g} s (models.timeout_s): the run was stopped")
        if overlapping:
            return DeadlineExceeded(f"{stopped}; retry later", headers={"Retry-After": "5"})
        log.error("model %s: a run passed its %g s deadline (models.timeout_s) and was "
                  "stopped (%d so far)", self.bundle.name, self.settings.timeout_s,
                  self.overruns)
        if self.on_overrun is not None:
            self.on_overrun(self)
        return DeadlineExceeded(f"{stopped} and the model reported in GET /v1/models; try "
                                "another model or ask the owner to remove this one")


def batching(bundle: Bundle, settings: Models) -> tuple[int, float]:
    """(max_batch, max_wait_ms) for this bundle: the owner's settings where set, else the
    manifest's `serving` values, else 1 and 0; batch 1 for a model without a dynamic batch."""
    if not bundle.manifest.input.dynamic_batch:
        return 1, 0.0
    serving = bundle.manifest.serving
    max_batch = settings.max_batch or serving.get("max_batch", 1)
    wait = settings.max_wait_ms if settings.max_wait_ms >= 0 else serving.get("max_wait_ms", 0)
    return max_batch, float(wait)
