"""onnxruntime sessions for a bundle: execution providers, threads, the idle session's
choice, and the check that the model's input is the one its manifest describes."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.deadlines import Deadlines
from appliance.errors import BundleError, ConfigError, ModelLoadError

if TYPE_CHECKING:
    import onnxruntime

    from appliance.bundle import Bundle
    from appliance.config import Models

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
BIG_MODEL_MS = 10.0
TIMING_S = 0.15  # a big model is timed for this long, its fastest run kept (see _run_ms)
CLEARLY_BIG = 10  # a warm-up this many times the line is big without more runs
TIMING = "one-thread"  # how plans were measured: part of their key
# OrtArenaCfg(max_mem, arena_extend_strategy, initial_chunk_size_bytes,
# max_dead_bytes_per_chunk): onnxruntime's defaults (-1; 0 max_mem: no limit). Growing by
# what is asked (strategy 1) instead of by powers of two kept 276-280 MB, not 258-268.
SHARED_ARENA = (0, -1, -1, -1)

log = logging.getLogger(__name__)


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


def session_count(settings: Models) -> int:
    """Plain sessions per model without an idle session: the setting, or half the cores (at
    least one), each on its share of the cores (threads_per_session)."""
    return settings.sessions or max(1, cpu_count() // 2)


def threads_per_session(settings: Models) -> int:
    """Intra-op threads for each plain session: the setting, or one when the idle session
    gives lone requests every core (one thread wastes no CPU on synchronizing), else the
    cores shared out among the sessions."""
    if settings.intra_op_threads:
        return settings.intra_op_threads
    if settings.idle_session:
        return 1
    return max(1, cpu_count() // session_count(settings))


def create_session(model_path: str, settings: Models, threads: int | None = None,
                   spin: bool | None = None, arena: bool = True) -> onnxruntime.InferenceSession:
    """One onnxruntime session with providers and threads from the settings (or `threads`
    and `spin` where given); `arena` False for inputs whose size changes with each picture.

    Raises ModelLoadError with onnxruntime's reason when the model cannot be loaded.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or threads_per_session(settings)
    # Spinning threads answer a little sooner, but on a few cores they burn the CPU that
    # decoding and the web server need between runs.
    spinning = settings.spin if spin is None else spin
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if spinning else "0")
    if spinning:
        # Spinning threads also spin on after a run returns unless told to stop. A lone
        # request's p99 was 25-48 ms with the idle session's thread spinning on after each
        # run, 18-23 ms with it stopped (p50 the same; six paired runs here): its core is
        # then free for the next request's HTTP and decode.
        options.add_session_config_entry("session.force_spinning_stop", "1")
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # onnxruntime's arena keeps the largest activations it ever held: for a text detector
    # fed pictures of every size, and its recogniser fed lines of every length, that was
    # 230 MB kept after a few signs; without it, 60 MB, and no slower here.
    options.enable_cpu_mem_arena = arena
    if arena and shared_arena():
        options.add_session_config_entry("session.use_env_allocators", "1")
    providers = choose_providers(settings.providers, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
        raise ModelLoadError(f"onnxruntime cannot load {model_path}: {exc}") from exc


@cache
def shared_arena() -> bool:
    """Register one CPU arena for every session of this process, once; True when it is.

    Each session's own arena keeps the largest activations that session ever held, and the
    default bundles open 15 sessions: one request to each left 307-316 MB resident. One
    shared arena holds what the sessions use at the same time instead: 256-269 MB, and no
    slower. Where onnxruntime refuses (another allocator registered first), each session
    keeps its own.
    """
    import onnxruntime as ort

    try:
        ort.create_and_register_allocator(
            ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                              ort.OrtMemType.DEFAULT),
            ort.OrtArenaCfg(*SHARED_ARENA))
    except Exception as exc:  # onnxruntime raises its own untyped errors
        log.warning("onnxruntime refused a shared CPU arena (%s): each session keeps its own",
                    exc)
        return False
    return True


class Plans:
    """What each model's timing run measured, kept in the state directory, so later starts
    of the same model file on the same machine serve it the same way without measuring it
    again: timing takes time at each start (up to TIMING_S a model), and a model near the
    line would be served one way or the other with the load of the moment. A file that is
    missing, unreadable or not a plan is ignored (measured anew); one that cannot be written
    (read-only state) leaves the box measuring each start."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self._runs = self._read()

    def _read(self) -> dict[str, float]:
        from appliance.storage import read_text

        text = read_text(self.path) if self.path is not None else None
        try:
            found = json.loads(text) if text else {}
        except ValueError:
            found = {}
        if not isinstance(found, dict):
            return {}
        return {k: float(v) for k, v in found.items()
                if isinstance(k, str) and isinstance(v, int | float) and math.isfinite(v)}

    @staticmethod
    def key(bundle: Bundle, settings: Models) -> str:
        """The model file, the cores, onnxruntime's version, the providers and how the
        timing is measured: a plan holds only while none of them changes (a plan from the
        one-run timing, which misjudged small models, is measured anew)."""
        import onnxruntime as ort

        return (f"{bundle.manifest.model['sha256']}:{cpu_count()}:{ort.__version__}:"
                f"{settings.providers}:{TIMING}")

    def run_ms(self, key: str) -> float | None:
        """The measured run time for `key`, or None."""
        return self._runs.get(key)

    def keep(self, key: str, ms: float) -> None:
        """Remember `ms` for `key` (written at once, atomically; a failure is logged)."""
        from appliance.storage import write_text_atomic

        self._runs[key] = round(ms, 3)
        if self.path is None:
            return
        try:
            write_text_atomic(self.path, json.dumps(self._runs, indent=1, sort_keys=True))
        except OSError as exc:
            log.warning("cannot keep the models' timing in %s (%s): each start measures "
                        "them again", self.path, exc)


def needs_timing(bundle: Bundle, settings: Models, plans: Plans | None) -> bool:
    """True when opening `bundle` runs a timing of it: a one-graph model served with an idle
    session on more than one core, whose timing `plans` does not hold."""
    if bundle.manifest.graphs or not settings.idle_session or cpu_count() == 1:
        return False
    return plans is None or plans.run_ms(Plans.key(bundle, settings)) is None


def open_sessions(bundle: Bundle, settings: Models, deadlines: Deadlines,
                  plans: Plans | None = None) -> tuple[list, object | None]:
    """The plain sessions that serve the queue, and the idle session (or None).

    A request that finds a small model idle runs at once in its own thread on the idle
    session: every core, spinning threads, the lowest latency one at a time. Under load the
    queue and the plain session take over: one thread a run, no spinning, run by a worker
    per core (`workers`; the `models.sessions` set, where it is), so no thread spins on the
    cores that decode and serve HTTP. A big model (one thread's run of BIG_MODEL_MS or more
    per core) gains little from spinning and a second copy of its activations costs tens of
    MB, so it gets one session on every core that serves everything. `plans` holds the
    timing of an earlier start (measured now and kept where it has none).
    Raises ModelLoadError (also when the timing runs pass models.timeout_s) or BundleError.
    """
    from appliance import tasks

    path, cores = bundle.model_path, cpu_count()
    if tasks.get(bundle.manifest.task).varying_input:
        # Text's pipeline of graphs runs seconds of varied shapes per request, and an edges
        # model runs at each photo's aspect: one session on every core that serves
        # everything, without an arena (see create_session). With the shared arena, one
        # sketch at 416 px kept 30 MB more resident after the default bundles' first requests.
        return [create_session(path, settings, threads=cores, spin=False, arena=False)], None
    if not settings.idle_session or cores == 1:
        return [create_session(path, settings) for _ in range(session_count(settings))], None
    key = Plans.key(bundle, settings) if plans is not None else ""
    known = plans.run_ms(key) if plans is not None else None
    # Big: a run on one thread that every core, sharing it perfectly, would still take
    # BIG_MODEL_MS or more over. One thread is timed, not every core: a box starting up does
    # other work at once, and a run on two threads waits for the slower, so on this 2-core
    # machine efficientnet-lite0 (6.2-9.5 ms on both cores) once timed 12.3 ms that way, and
    # was served as a big model for good.
    big = BIG_MODEL_MS * cores
    probe = None
    if known is None:
        probe = create_session(path, settings, threads=1, spin=False)
        known = _run_ms(probe, bundle, deadlines, settings.timeout_s, big)
        if plans is not None:
            plans.keep(key, known)
    if known >= big:
        probe = None  # not two copies of a big model's weights at once
        return [create_session(path, settings, threads=cores, spin=False)], None
    # One 1-thread session, run by a worker per core (workers, below), unless the owner set
    # models.sessions: concurrent runs of one session need no second copy of the model.
    one_thread = threads_per_session(settings) == 1
    count = settings.sessions or (1 if one_thread else session_count(settings))
    plain = [probe] if probe is not None and one_thread else []
    plain += [create_session(path, settings) for _ in range(count - len(plain))]
    return plain, create_session(path, settings, threads=cores, spin=True)


def threads(session) -> int | None:
    """A session's intra-op threads; None for a session given to Runner that cannot say."""
    options = getattr(session, "get_session_options", None)
    return options().intra_op_num_threads if options else None


def workers(plain: list, settings: Models) -> int:
    """Worker threads for the queue of `plain` sessions (open_sessions' count goes with it).

    A number in `models.sessions` is the sessions and their workers. With 0 (automatic):
    one per plain session, and more where the sessions' threads leave cores idle. Concurrent
    runs of one session are safe and run in parallel, so one 1-thread session gets a worker
    per core and a crowd has every core without a second copy of the model (two sessions of
    efficientnet-lite0 held 33 MB more with the default bundles).
    """
    counts = [threads(session) for session in plain]
    if settings.sessions or None in counts:
        return len(plain)
    return max(len(plain), cpu_count() // max(1, max(counts)))


def layout(plain: list, idle, runs: int) -> str:
    """How a model is served, for the log: its plain sessions' threads, the runs at once
    under load, and the idle session's threads (an owner, and the benchmark, can then tell
    which layout a start chose)."""
    said = (f"{len(plain)} queued session(s) of {threads(plain[0]) or '?'} thread(s), "
            f"{runs} run(s) at once")
    return said + (f", and an idle session of {threads(idle)} for a lone request"
                   if idle is not None else ", no idle session")


def _run_ms(session, bundle: Bundle, deadlines: Deadlines, timeout_s: float,
            enough: float = BIG_MODEL_MS) -> float:
    """The fastest run on zeros, in milliseconds, after one to warm up: runs go on until one
    is under `enough` (the line that decides the layout) or TIMING_S has passed, all within
    `timeout_s`. A warm-up of CLEARLY_BIG times `enough` is the answer itself: one thread
    must not spend more than a run and a warm-up of a model that big. One run after one
    warm-up was the rule before: a busy moment decided the layout for good.

    Raises ModelLoadError when the model fails on zeros or does not finish in time.
    """
    name, shape = check_signature(session, bundle)
    zeros = np.zeros(shape, dtype=input_dtype(bundle))
    best = math.inf
    with deadlines.watch(time.monotonic() + timeout_s) as ticket:
        try:
            started = time.perf_counter()
            session.run(None, {name: zeros}, ticket.options)
            warm_up = (time.perf_counter() - started) * 1000
            if warm_up >= enough * CLEARLY_BIG:
                return warm_up  # no warm-up is that slow: a big model, timed no more
            until = time.perf_counter() + TIMING_S
            while best >= enough and (best == math.inf or time.perf_counter() < until):
                started = time.perf_counter()
                session.run(None, {name: zeros}, ticket.options)
                best = min(best, (time.perf_counter() - started) * 1000)
        except Exception as exc:
            reason = (f"did not finish within {timeout_s:g} s (models.timeout_s)"
                      if ticket.expired else f"failed: {exc}")
            raise ModelLoadError(f"model {bundle.name} {reason} on an input of zeros") \
                from None
    return best


def input_dtype(bundle: Bundle) -> type:
    """The numpy type of the model's input tensor."""
    return np.uint8 if bundle.manifest.input.dtype == "uint8" else np.float32


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
