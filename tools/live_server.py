"""A real `appliance serve` process on a loopback port, a tiny HTTP client for it, and how
headless Chromium is started to look at its pages (used by the end-to-end tests, the
benchmarks and tools/screenshots.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools.bench.client import multipart, process_rss_mb

BANNER = re.compile(r"bound to 127\.0\.0\.1:(\d+)")
# Debian's chromium package, headless. No background networking: Chromium must not try to
# reach anything but the box (this machine's closed network refuses it, many at a time).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


class LiveServer:
    """`appliance serve --host 127.0.0.1 --port 0` as a subprocess; the port is read from the
    banner it prints, so there is no race for a free port."""

    def __init__(self, models_dir: Path, state_dir: Path, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.prefixed = bool(prefix)
        self.started = time.monotonic()
        command = [*(prefix or []), sys.executable, "-m", "appliance", "serve",
                   "--host", "127.0.0.1", "--port", "0", "--models-dir", str(models_dir)]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        # mDNS off unless a test asks: nothing is announced beyond this machine.
        environ.update({"APPLIANCE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1",
                        "ORT_DISABLE_TELEMETRY": "1", "APPLIANCE_DISCOVERY_ENABLED": "false",
                        **(env or {})})
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=environ)
        self.output: list[str] = []
        self._banner_done = threading.Event()
        self._port: int | None = None
        # Drain the pipe all the time so a chatty server can never block on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._banner_done.wait(60) or self._port is None:
            self.process.kill()
            self.process.wait()
            self._reader.join(10)
            self.process.stdout.close()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        self.port = self._port
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            match = BANNER.search(line)
            if match:
                self._port = int(match.group(1))
            if "stop with Ctrl+C" in line:
                self._banner_done.set()
        self._banner_done.set()

    def rss_mb(self) -> float:
        """The server's resident memory in MB (Linux)."""
        return process_rss_mb(self._server_pid())

    def wait_ready(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body, _ = get(self.url + "/readyz")
            if status == 200:
                return json.loads(body)
            time.sleep(0.05)
        raise TimeoutError("server never became ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.stdout.closed:
            return self.process.returncode
        if self.process.poll() is None:
            os.kill(self._server_pid(), sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(10)
        if not self._reader.is_alive():
            self.process.stdout.close()
        return code

    def _server_pid(self) -> int:
        """The server's own pid: under a prefix (strace) it is the prefix's child."""
        if not self.prefixed:
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else self.process.pid

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on now (for servers that need it given)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, bytes, dict]:
    return request("GET", url)


def post_image(url: str, data: bytes, filename: str = "photo.jpg",
               headers: dict | None = None) -> tuple[int, bytes, dict]:
    """POST `data` as multipart field `image`, the way `curl -F image=@photo.jpg` does."""
    body, content_type = multipart("image", data, filename)
    return request("POST", url, body, {"Content-Type": content_type, **(headers or {})})


def request(method: str, url: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), dict(error.headers)
    except (ConnectionError, urllib.error.URLError):
        return 0, b"", {}
