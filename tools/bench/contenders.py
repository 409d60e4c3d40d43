"""The servers the benchmark measures: how to set each up, start it on a loopback port, and
what request it takes for one image.

The appliance, the web floor and the naive baseline run in the project's own interpreter.
MLServer, BentoML and KServe each run in a virtualenv of their own under `.bench/venvs/`,
created on first use from the package registry and reused after; they are never
dependencies of the project. Every server binds 127.0.0.1 and has its tracking switched off.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.bench.client import build_request, closed_loop, multipart
from tools.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".bench" / "venvs"
# Pinned so a rerun measures the same thing; uvloop 0.22 stops MLServer's worker (an open
# MLServer bug), hence the cap.
PEER_PACKAGES = {
    "mlserver": ["mlserver==1.7.1", "uvloop<0.22"],
    "bentoml": ["bentoml==1.4.40"],
    "kserve": ["kserve==0.21.0"],
}
RUNTIME = ["onnxruntime", "numpy", "pillow"]
QUIET_ENV = {"ORT_DISABLE_TELEMETRY": "1", "BENTOML_DO_NOT_TRACK": "true",
             "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"}


class Unavailable(Exception):
    """A contender that cannot run here (its virtualenv could not be built, say)."""


@dataclass
class Running:
    """A started server: its process group, its port and how to ask it about an image."""

    name: str
    process: subprocess.Popen
    port: int
    request_for: Callable[[bytes], bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 20 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class Contender:
    """One server to measure: `start(bundle, workdir)` returns it running and answering."""

    name: str
    kind: str  # "appliance", "floor", "naive" or "peer"
    start: Callable[[Path, Path], Running]


def ensure_venv(name: str) -> Path:
    """The python of `.bench/venvs/NAME`, built with the peer's pinned packages if needed.

    Raises Unavailable with pip's last lines when it cannot be built.
    """
    spec = " ".join(PEER_PACKAGES[name] + RUNTIME)
    folder = VENVS / name
    python = folder / "bin" / "python"
    marker = folder / ".bench-packages"
    if python.exists() and marker.exists() and marker.read_text() == spec:
        return python
    shutil.rmtree(folder, ignore_errors=True)
    steps = [[sys.executable, "-m", "venv", str(folder)],
             [str(python), "-m", "pip", "install", "--quiet", *spec.split()]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise Unavailable(f"could not build the {name} virtualenv: {tail}")
    marker.write_text(spec)
    return python


def _spawn(name: str, command: list[str], workdir: Path, env: dict[str, str]) -> tuple:
    log = workdir / f"{name}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    environ.update({**QUIET_ENV, "PYTHONPATH": str(ROOT), "HOME": str(workdir), **env})
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   env=environ, start_new_session=True)
    return process, log


def _wait_answering(running: Running, photo: bytes, timeout: float = 180) -> Running:
    """Poll with a real request until the server answers 200; raises Unavailable if never."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            break
        try:
            result = closed_loop(running.port, running.request_for(photo), 1, 0.0, 0.0,
                                 max_requests=1)
            if result.ok:
                return running
        except OSError:
            pass
        time.sleep(0.25)
    running.stop()
    tail = "\n".join(running.log.read_text(errors="replace").splitlines()[-8:])
    raise Unavailable(f"{running.name} did not answer within {timeout:.0f} s:\n{tail}")


def _multipart_request(path: str, field_name: str = "image") -> Callable[[bytes], bytes]:
    def request_for(photo: bytes) -> bytes:
        body, content_type = multipart(field_name, photo)
        return build_request(path, body, content_type)
    return request_for


def _json_request(path: str, make: Callable[[str], dict]) -> Callable[[bytes], bytes]:
    def request_for(photo: bytes) -> bytes:
        body = json.dumps(make(base64.b64encode(photo).decode())).encode()
        return build_request(path, body, "application/json")
    return request_for


def appliance(env: dict[str, str], label: str = "appliance") -> Contender:
    """`appliance serve` with its shipped settings plus `env` (the rate limit is off: one
    benchmark client is not the crowd it guards against)."""
    def start(bundle: Path, workdir: Path) -> Running:
        models = workdir / f"{label}-models"
        if not models.exists():
            models.mkdir()
            shutil.copytree(bundle, models / bundle.name)
        port = free_port()
        process, log = _spawn(label, [sys.executable, "-m", "appliance", "serve", "--host",
                                      "127.0.0.1", "--port", str(port), "--models-dir",
                                      str(models)], workdir,
                              {"APPLIANCE_STATE_DIR": str(workdir / f"{label}-state"),
                               "APPLIANCE_DISCOVERY_ENABLED": "false",
                               # One client here stands for many: no per-client limits
                               # (16 phone photos in flight hold 60 MB of uploads).
                               "APPLIANCE_AUTH_RATE_PER_MINUTE": "0",
                               "APPLIANCE_SERVER_MAX_RECEIVING_MB": "1000", **env})
        request = _multipart_request(f"/v1/models/{bundle.name}/infer")
        return Running(label, process, port, request, log)
    return Contender(label, "appliance", start)


def floor() -> Contender:
    def start(bundle: Path, workdir: Path) -> Running:
        port = free_port()
        process, log = _spawn("floor", [sys.executable, "-m", "tools.bench.peers.floor",
                                        str(port)], workdir, {})
        return Running("web floor", process, port, _multipart_request("/upload"), log)
    return Contender("web floor (Flask on the box's waitress, no model)", "floor", start)


def naive() -> Contender:
    def start(bundle: Path, workdir: Path) -> Running:
        port = free_port()
        process, log = _spawn("naive", [sys.executable, "-m", "tools.bench.peers.naive",
                                        str(port), str(bundle)], workdir, {})
        return Running("naive", process, port, _multipart_request("/infer"), log)
    return Contender("naive (Flask dev server)", "naive", start)


def mlserver(max_batch: int = 8) -> Contender:
    def start(bundle: Path, workdir: Path) -> Running:
        python = ensure_venv("mlserver")
        folder = workdir / "mlserver"
        folder.mkdir(exist_ok=True)
        port = free_port()
        _mlserver_settings(folder, bundle.resolve(), port, free_port(), max_batch)
        process, log = _spawn("mlserver", [str(python.parent / "mlserver"), "start",
                                           str(folder)], workdir,
                              {"MLSERVER_PARALLEL_WORKERS": "0"})
        request = _json_request("/v2/models/classifier/infer", lambda b64: {
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64],
                        "parameters": {"content_type": "base64"}}]})
        return Running("mlserver", process, port, request, log)
    return Contender(f"MLServer 1.7.1 (adaptive batching {max_batch})", "peer", start)


def _mlserver_settings(folder: Path, bundle: Path, http_port: int, grpc_port: int,
                       max_batch: int) -> None:
    """The two JSON files `mlserver start FOLDER` reads: server and model settings."""
    server = {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port,
              "parallel_workers": 0, "metrics_endpoint": None, "debug": False}
    model = {"name": "classifier", "implementation": "tools.bench.peers.mlserver_peer."
             "OnnxClassifier", "parameters": {"uri": str(bundle)},
             "max_batch_size": max_batch, "max_batch_time": 0.002 if max_batch > 1 else 0}
    (folder / "settings.json").write_text(json.dumps(server))
    (folder / "model-settings.json").write_text(json.dumps(model))


def bentoml(max_batch: int = 8) -> Contender:
    def start(bundle: Path, workdir: Path) -> Running:
        python = ensure_venv("bentoml")
        port = free_port()
        process, log = _spawn("bentoml", [str(python.parent / "bentoml"), "serve",
                                          "tools.bench.peers.bentoml_peer:Classifier",
                                          "--host", "127.0.0.1", "--port", str(port)],
                              workdir, {"BENCH_BUNDLE": str(bundle.resolve()),
                                        "BENCH_MAX_BATCH": str(max_batch),
                                        "BENTOML_HOME": str(workdir / "bentoml-home")})
        return Running("bentoml", process, port, _multipart_request("/classify", "images"),
                       log)
    return Contender(f"BentoML 1.4.40 (adaptive batching {max_batch})", "peer", start)


def kserve() -> Contender:
    def start(bundle: Path, workdir: Path) -> Running:
        python = ensure_venv("kserve")
        port = free_port()
        process, log = _spawn("kserve", [str(python), "-m", "tools.bench.peers.kserve_peer",
                                         str(port), str(bundle.resolve())], workdir, {})
        request = _json_request("/v1/models/classifier:predict",
                                lambda b64: {"instances": [{"image": {"b64": b64}}]})
        return Running("kserve", process, port, request, log)
    return Contender("KServe 0.21.0 (no batching in its server)", "peer", start)


def start_answering(contender: Contender, bundle: Path, workdir: Path,
                    photo: bytes) -> Running:
    """Start `contender` and wait until it answers a real request. Raises Unavailable."""
    return _wait_answering(contender.start(bundle, workdir), photo)


ALL = {"appliance": lambda: appliance({}), "floor": floor, "naive": naive,
       "mlserver": mlserver, "bentoml": bentoml, "kserve": kserve}
