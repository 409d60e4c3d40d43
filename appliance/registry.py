"""The models directory: discover bundles, load each into a runner, know the active one.

A bundle that fails to load never stops the others: it is listed with its error in
`/v1/models` and `/readyz`. Loading runs in the background so the server answers `/healthz`
at once and `/readyz` turns 200 when the models are warm. A model whose runs pass their
deadline is reported (`overruns` in `/v1/models`, and the log); after MAX_OVERRUNS it stops
serving and is listed as failed until it is removed, reinstalled or the box restarts.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import bundle as bundles
from appliance.config import Settings
from appliance.deadlines import Deadlines
from appliance.engine import Runner
from appliance.errors import ApplianceError, NotFound, Unavailable
from appliance.sessions import Plans, needs_timing
from appliance.storage import fsync_dir, read_text, write_text_atomic

log = logging.getLogger(__name__)
ACTIVE_FILE = "active-model"
PLANS_FILE = "model-timing.json"  # each model's timing run, kept for later starts
# Bundles loaded at once at start: two measured 0.3 s sooner than one for the eight default
# bundles on two cores; three, no sooner.
LOAD_THREADS = 2
# Runs stopped at their deadline before a model stops serving: one can be a slow moment of
# the box, three are a model that takes a core for models.timeout_s on every such input.
MAX_OVERRUNS = 3


@dataclass
class Failure:
    """A bundle folder that could not be served, and why."""

    name: str
    error: str


def _model_hashes(found: bundles.Bundle) -> dict[str, str]:
    """The sha256 of each model file of a bundle, by its manifest field."""
    return {"model": found.manifest.model["sha256"],
            **{name: graph["sha256"] for name, graph in found.manifest.graphs.items()}}


class Registry:
    """Every installed bundle: the runners that serve and the failures that don't."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models_dir = Path(settings.models.dir)
        self.state_dir = Path(settings.state.dir)
        self.plans = Plans(self.state_dir / PLANS_FILE)
        self._runners: dict[str, Runner] = {}
        self._failures: dict[str, Failure] = {}
        self._lock = threading.Lock()
        self._install_lock = threading.Lock()
        self._loaded = threading.Event()
        self._active = settings.models.active
        self._thread: threading.Thread | None = None
        self._deadlines = Deadlines()  # one watcher thread for every model's runs

    def start(self) -> None:
        """Load every bundle in a background thread."""
        self._thread = threading.Thread(target=self.load_all, name="registry-load", daemon=True)
        self._thread.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Block until loading has finished; True if it has."""
        return self._loaded.wait(timeout)

    def load_all(self) -> None:
        """Load and warm every bundle in the models directory, recording failures.

        First it cleans what an interrupted install left: the staging area, and a swap cut
        between its two renames (the previous version is put back: old or new, never a mix).
        Bundles load LOAD_THREADS at a time (onnxruntime builds a session mostly outside the
        GIL); a model whose timing must be measured (its first start on this machine) loads
        after them, alone, so that the timing measures the model and not its neighbours.
        """
        self._recover()
        read = [self._read(folder) for folder in self._folders()]
        found = [bundle for bundle in read if bundle is not None]
        timed = [b for b in found if needs_timing(b, self.settings.models, self.plans)]
        with ThreadPoolExecutor(LOAD_THREADS, thread_name_prefix="registry-load") as pool:
            opened = list(pool.map(self._load_one, [b for b in found if b not in timed]))
        opened += [self._load_one(bundle) for bundle in timed]
        with self._lock:  # in the folders' order, whichever finished first
            self._runners.update(sorted((r.bundle.name, r) for r in opened if r is not None))
        self._active = self._choose_active()
        self._loaded.set()
        log.info("models ready: %s; failed: %s", ", ".join(self._runners) or "none",
                 ", ".join(self._failures) or "none")

    def _recover(self) -> None:
        from appliance.install import clean_staging

        if not self.models_dir.is_dir():
            return
        clean_staging(self.models_dir)
        for name in bundles.recover(self.models_dir):
            log.warning("model %s: an install was interrupted; the previous version is "
                        "back", name)

    def install(self, folder: Path, name: str) -> tuple[Runner, bool]:
        """Swap a checked bundle folder in as `name`; the previous version is kept as
        .NAME.last-good until the next install (bundle.swap_in). Returns the runner and
        whether it replaced one. Raises BundleError/ModelLoadError, with the previous
        version still serving."""
        with self._install_lock:
            return self._install(folder, name)

    def refresh(self, folder: Path, name: str) -> tuple[Runner, bool]:
        """Swap in a bundle folder whose model files are byte for byte those `name` already
        runs (a taught model's new head and labels): its runner keeps its sessions and
        serves the new manifest, labels and head from the next request on, in milliseconds
        where an install takes a new session and a warm-up. Anything else (new model files,
        or `name` not serving) is an install. Returns as `install`; raises BundleError."""
        with self._install_lock:
            runner = self.runners().get(name)
            fresh = bundles.read(folder)
            if runner is None or _model_hashes(fresh) != _model_hashes(runner.bundle) \
                    or fresh.name != name:
                return self._install(folder, name)
            dest = self._swap(folder, name)
            runner.bundle = dataclasses.replace(fresh, path=dest)
            return runner, True

    def _swap(self, folder: Path, name: str) -> Path:
        """`folder` swapped in as NAME (bundle.swap_in: the current one kept until the next
        swap, and put back by a start after a cut between the two renames)."""
        dest = self.models_dir / name
        bundles.swap_in(folder, dest)
        return dest

    def _install(self, folder: Path, name: str) -> tuple[Runner, bool]:
        """Swap `folder` in and open it (the install lock held)."""
        dest = self.models_dir / name
        kept, replaced = bundles.kept_path(dest), dest.exists()
        self._swap(folder, name)
        try:
            runner = self._open(bundles.read_installed(dest))
        except ApplianceError:
            shutil.rmtree(dest, ignore_errors=True)
            if replaced:
                kept.rename(dest)
            raise
        with self._lock:
            old = self._runners.get(name)
            self._runners[name] = runner
            self._failures.pop(name, None)
        if old is not None:
            old.close()  # after the requests it already holds
        if not self._active:
            self._active = name
        return runner, replaced

    def remove(self, name: str) -> None:
        """Stop serving `name` and delete its folder. Raises NotFound."""
        with self._install_lock:
            if name not in self.names():
                raise NotFound(f"no model named {name!r}: installed models are "
                               f"{', '.join(self.names()) or 'none'}")
            with self._lock:
                runner = self._runners.pop(name, None)
                self._failures.pop(name, None)
            if runner is not None:
                runner.close(cancel=True)  # a run in progress is stopped, not waited for
            trash = self.models_dir / f".{name}.removed.{uuid.uuid4().hex}"
            (self.models_dir / name).rename(trash)
            fsync_dir(self.models_dir)
            shutil.rmtree(trash, ignore_errors=True)
            if self._active == name:
                self._active = self._choose_active()

    def _folders(self) -> list[Path]:
        if not self.models_dir.is_dir():
            log.warning("models directory %s does not exist: no models to serve",
                        self.models_dir)
            return []
        return bundles.folders(self.models_dir)

    def _read(self, folder: Path) -> bundles.Bundle | None:
        """The bundle in `folder`, or None with its failure recorded."""
        try:
            return bundles.read_installed(folder)
        except ApplianceError as exc:
            self._fail(folder.name, exc)
            return None

    def _load_one(self, bundle: bundles.Bundle) -> Runner | None:
        """A warm runner for `bundle`, or None with its failure recorded."""
        try:
            return self._open(bundle)
        except ApplianceError as exc:
            self._fail(bundle.name, exc)
            return None

    def _fail(self, name: str, exc: ApplianceError) -> None:
        log.error("model %s cannot be served: %s", name, exc.message)
        with self._lock:
            self._failures[name] = Failure(name, exc.message)

    def _open(self, bundle: bundles.Bundle) -> Runner:
        runner = Runner(bundle, self.settings.models, deadlines=self._deadlines,
                        on_overrun=self._overran, plans=self.plans)
        if self.settings.models.warmup:
            try:
                runner.warm_up()
            except ApplianceError:
                runner.close(cancel=True)
                raise
        return runner

    def _overran(self, runner: Runner) -> None:
        """A run of `runner` was stopped at its deadline: at MAX_OVERRUNS the model stops
        serving and shows as failed (its folder stays: DELETE removes it)."""
        if runner.overruns < MAX_OVERRUNS:
            return
        name, limit = runner.bundle.name, self.settings.models.timeout_s
        error = (f"stopped serving: {runner.overruns} runs passed the {limit:g} s deadline "
                 f"(models.timeout_s); remove it (DELETE /v1/models/{name}) or install a "
                 "fixed version")
        with self._lock:
            if self._runners.get(name) is not runner:
                return
            del self._runners[name]
            self._failures[name] = Failure(name, error)
        log.error("model %s %s", name, error)
        # Called from one of the runner's own threads, which close() must not wait for.
        threading.Thread(target=runner.close, kwargs={"cancel": True}, daemon=True,
                         name=f"close-{name}").start()

    def _choose_active(self) -> str:
        wanted = self._active or read_text(self.state_dir / ACTIVE_FILE) or ""
        if wanted in self._runners:
            return wanted
        return next(iter(sorted(self._runners)), "")

    @property
    def ready(self) -> bool:
        """Loading is done and at least one model serves."""
        return self._loaded.is_set() and bool(self._runners)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    @property
    def active(self) -> str:
        return self._active

    def runners(self) -> dict[str, Runner]:
        with self._lock:
            return dict(self._runners)

    def failures(self) -> dict[str, Failure]:
        with self._lock:
            return dict(self._failures)

    def names(self) -> list[str]:
        """Every installed name, serving or not, sorted."""
        return sorted(set(self.runners()) | set(self.failures()))

    def get(self, name: str) -> Runner:
        """The runner for `name`. Raises NotFound (listing the names) or Unavailable."""
        runners = self.runners()
        if name in runners:
            return runners[name]
        failure = self.failures().get(name)
        if failure is not None:
            raise Unavailable(f"model {name} is installed but cannot serve: {failure.error}")
        if not self._loaded.is_set():
            raise Unavailable("models are still loading: retry in a few seconds",
                              headers={"Retry-After": "2"})
        shown = name if len(name) <= 80 else f"{name[:80]}..."  # never echo a 1 MB name
        raise NotFound(f"no model named {shown!r}: installed models are "
                       f"{', '.join(self.names()) or 'none'} (GET /v1/models)")

    def get_active(self) -> Runner:
        """The active model's runner. Raises Unavailable when there is none."""
        if not self._active:
            raise Unavailable("no model is serving: install one or check GET /readyz")
        return self.get(self._active)

    def activate(self, name: str) -> str | None:
        """Make `name` the active model and remember it across restarts.

        Returns a warning when it could not be saved (read-only state). Raises NotFound.
        """
        self.get(name)
        self._active = name
        try:
            write_text_atomic(self.state_dir / ACTIVE_FILE, name + "\n")
        except OSError as exc:
            log.warning("active model %s not saved: %s", name, exc)
            return f"active model set, but not saved for the next start: {exc}"
        return None

    def describe(self) -> list[dict[str, Any]]:
        """Every installed model for GET /v1/models: summary, state, error."""
        entries = [dict(r.bundle.summary(), active=(name == self._active), status="ready",
                        overruns=r.overruns)
                   for name, r in self.runners().items()]
        entries += [{"name": f.name, "status": "failed", "error": f.error, "active": False}
                    for f in self.failures().values()]
        return sorted(entries, key=lambda e: e["name"])

    def close(self) -> None:
        """Stop every runner, after loading ends: a process must not exit while onnxruntime
        is still creating a session. The server has drained its requests by now, so a run
        still going is a wedge: it is terminated rather than waited for."""
        if self._thread is not None:
            self._thread.join()
        for runner in self.runners().values():
            runner.close(cancel=True)
        self._deadlines.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
