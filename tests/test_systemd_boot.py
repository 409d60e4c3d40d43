"""The box as a service under a real systemd: a Debian 12 root booted with systemd-nspawn
(tools/nspawn.py), `make install` inside as a new user would, then what the unit promises:
active through READY=1, announced on mDNS, onnxruntime sees the CPU, the hardening in force,
the watchdog (row 25), restarts, draining on stop, upgrades and uninstall keeping state.

The tests run in file order on one container: each leaves the service running for the next.
They skip, naming the package, where no container can boot (tools/nspawn.unavailable).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from appliance import config
from appliance.discovery import discover
from tests import models as tiny
from tools import nspawn
from tools.live_server import free_port, get, post_image, request

pytestmark = [pytest.mark.slow, pytest.mark.systemd]
SOURCE = "/root/appliance"
STATE = "/var/lib/appliance"
# What install.sh installs, plus the Makefile: the checkout as a new user has it.
CHECKOUT_PARTS = ("appliance", "tools", "systemd", "pyproject.toml", "README.md", "Makefile",
                  "models/README.md")


class Box:
    """The container with the appliance installed as a service, driven from here."""

    def __init__(self, container: nspawn.Container, port: int, pip_env: dict[str, str]):
        self.container = container
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.pip_env = pip_env
        self.name = "nspawn-" + uuid.uuid4().hex[:8]

    def sh(self, script: str, timeout: float = 60, check: bool = True) -> str:
        """`script` through sh inside; its stdout."""
        return self.container.run(["sh", "-c", script], timeout=timeout, check=check).stdout

    def make(self, target: str, timeout: float = 900) -> str:
        return self.container.run(["make", "-C", SOURCE, target], env=self.pip_env,
                                  timeout=timeout).stdout

    def show(self, prop: str) -> str:
        return self.sh(f"systemctl show -p {prop} --value appliance").strip()

    def main_pid(self) -> int:
        return int(self.show("MainPID"))

    def write(self, path: str, text: str) -> None:
        self.container.write(path, text)

    def journal(self) -> str:
        return self.sh("journalctl -u appliance -o cat --no-pager")

    def wait_journal(self, pattern: str, timeout: float = 30) -> str:
        """The journal once `pattern` is in it (threads log after READY=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            journal = self.journal()
            if re.search(pattern, journal):
                return journal
            time.sleep(0.5)
        pytest.fail(f"{pattern!r} not logged in {timeout} s:\n{journal[-3000:]}")

    def wait_ready(self, timeout: float = 120) -> None:
        """Until systemd says active and /readyz answers 200; fails with the journal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.show("ActiveState") == "active" and get(self.url + "/readyz")[0] == 200:
                return
            time.sleep(0.5)
        pytest.fail(f"not ready after {timeout} s:\n{self.journal()[-3000:]}")

    def wait_new_pid(self, old: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.main_pid()
            if pid not in (0, old):
                return pid
            time.sleep(0.2)
        pytest.fail(f"no new main process after {timeout} s:\n{self.journal()[-3000:]}")


def _checkout_files(slow_bundle: Path) -> list[tuple[Path, str]]:
    """The source, the built bundles and the slow test bundle, as (host path, name inside)."""
    root = config.CHECKOUT
    files = []
    parts = [root / p for p in CHECKOUT_PARTS]
    parts += [m.parent for m in sorted(root.glob("models/*/manifest.json"))]
    for part in parts:
        found = [part] if part.is_file() else sorted(p for p in part.rglob("*") if p.is_file())
        files += [(p, str(p.relative_to(root))) for p in found
                  if "__pycache__" not in p.parts and p.suffix != ".pyc"]
    files += [(p, f"models/slow/{p.name}") for p in sorted(slow_bundle.iterdir())]
    return files


def _config(box: Box) -> str:
    # Loopback only, a port free here (the container shares this machine's network), and a
    # name of its own so that discovery finds this box and no other.
    return (f'[server]\nhost = "127.0.0.1"\nport = {box.port}\n\n'
            f'[discovery]\nname = "{box.name}"\n')


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """The container, booted once for the module, with `make install` done inside."""
    reason = nspawn.unavailable()
    if reason:
        pytest.skip(reason)
    if not list(config.CHECKOUT.glob("models/*/manifest.json")):
        pytest.skip("needs the default bundles in models/ (make models)")
    try:
        root = nspawn.ensure_root()
    except nspawn.NspawnError as exc:
        pytest.skip(f"no Debian root for systemd-nspawn: {exc}")
    slow = tmp_path_factory.mktemp("bundles")
    tiny.write_bundle(slow, "slow", model=tiny.slow_classify_model(matmuls=200))
    pip_env, pip_files = nspawn.pip_environment()
    with contextlib.ExitStack() as stack:
        try:
            container = stack.enter_context(nspawn.Container(root, binds_ro=pip_files))
        except nspawn.NspawnError as exc:
            pytest.skip(f"a container cannot boot here: {exc}")
        box = Box(container, free_port(), pip_env)
        container.copy_in(_checkout_files(slow / "slow"), SOURCE)
        container.write("/etc/appliance/appliance.toml", _config(box))
        box.make("install")
        yield box
    assert not container.alive(), "the container outlived its test module"


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_make_install_comes_up_active_with_its_status(box):
    assert box.show("ActiveState") == "active"
    assert re.match(r"\d+ models serving, active \S+; \d+ requests", box.show("StatusText"))
    assert get(box.url + "/readyz")[0] == 200


def test_announced_on_mdns_under_its_unit(box):
    journal = box.wait_journal(r"announced \S+ on mDNS|mDNS announcement failed")
    assert "mDNS announcement failed" not in journal
    assert f"announced {box.name}.local on mDNS" in journal
    found = [b for b in discover(timeout=3.0) if b.name == box.name]
    assert found and found[0].port == box.port


def test_onnxruntime_reads_the_cpu_under_its_unit(box):
    journal = box.journal()
    assert "Error in cpuinfo" not in journal
    assert "CPU EP performance degradation" not in journal
    assert "Unknown CPU vendor" not in journal


def test_hardening_in_force(box):
    pid = box.main_pid()
    status = box.sh(f"cat /proc/{pid}/status")
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    assert uid != 0
    assert re.search(r"^CapEff:\s+0+$", status, re.M)
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    assert box.show("DynamicUser") == "yes"
    # Writes as the service does them: its user, in its mount namespace.
    as_service = f"nsenter -t {pid} -m -S {uid} -G {uid} sh -c"
    for path in ("/opt/appliance/src/x", "/var/lib/x", "/usr/x", "/etc/x"):
        done = box.sh(f"{as_service} 'echo > {path}' 2>&1; echo rc=$?", check=False)
        assert "Read-only file system" in done, (path, done)
    done = box.sh(f"{as_service} 'echo > /etc/appliance/x' 2>&1; echo rc=$?", check=False)
    assert "Permission denied" in done, done
    assert "rc=0" in box.sh(f"{as_service} 'echo > {STATE}/probe && rm {STATE}/probe'; "
                            "echo rc=$?")


def test_row25_wedged_process_restarted_by_the_watchdog(box):
    box.write("/run/systemd/system/appliance.service.d/watchdog.conf",
              "[Service]\nWatchdogSec=3\n")
    try:
        box.sh("systemctl daemon-reload && systemctl restart appliance", timeout=180)
        box.wait_ready()
        restarts, pid = int(box.show("NRestarts")), box.main_pid()
        box.sh(f"kill -STOP {pid}")
        new = box.wait_new_pid(pid, timeout=60)
        assert int(box.show("NRestarts")) == restarts + 1, new
        assert "Watchdog timeout" in box.journal()
        box.wait_ready()
    finally:
        box.sh("rm -f /run/systemd/system/appliance.service.d/watchdog.conf && "
               "systemctl daemon-reload && systemctl restart appliance", timeout=180)
    box.wait_ready()


def test_kill_9_restarted_with_the_models_whole(box):
    restarts, pid = int(box.show("NRestarts")), box.main_pid()
    box.sh(f"kill -9 {pid}")
    box.wait_new_pid(pid)
    box.wait_ready()
    assert int(box.show("NRestarts")) == restarts + 1
    status, body, _ = get(box.url + "/v1/models")
    listed = {m["name"]: m for m in json.loads(body)["models"]}
    installed = set(box.sh(f"ls {STATE}/models").split())
    assert status == 200 and set(listed) == installed
    assert all(m["status"] == "ready" for m in listed.values()), listed
    status, body, _ = post_image(box.url + "/v1/models/efficientnet-lite0/infer", _photo())
    assert status == 200 and json.loads(body)["predictions"], body


def test_row24_stop_lets_the_inferences_in_flight_finish(box):
    # Six slow requests at once: they queue behind the model's sessions. The stop is sent as
    # the first answer arrives, so the others are still in flight whatever this machine's speed.
    answers: list[tuple[int, float]] = []
    first = threading.Event()

    def send() -> None:
        status, _, _ = post_image(box.url + "/v1/models/slow/infer", _photo())
        answers.append((status, time.monotonic()))
        first.set()

    senders = [threading.Thread(target=send) for _ in range(6)]
    for sender in senders:
        sender.start()
    try:
        assert first.wait(60), "no answer from the slow model"
        stopping = time.monotonic()
        box.sh("systemctl stop appliance", timeout=60)
        for sender in senders:
            sender.join(60)
        assert [status for status, _ in answers] == [200] * 6, answers
        assert any(answered > stopping for _, answered in answers), \
            "every inference was over before the stop: make the slow model slower"
        assert "finishing in-flight requests" in box.journal()
    finally:
        box.sh("systemctl start appliance", timeout=180)
    box.wait_ready()


def _kept(box: Box) -> dict[str, str]:
    return {"config": box.sh("cat /etc/appliance/appliance.toml"),
            "token": box.sh(f"cat {STATE}/admin-token"),
            "models": box.sh(f"cd {STATE}/models && find . -type f | sort | xargs sha256sum")}


def test_upgrade_keeps_config_token_and_models(box):
    before, pid = _kept(box), box.main_pid()
    box.sh(f"echo '# upgraded' >> {SOURCE}/appliance/__init__.py")
    out = box.make("install")
    assert "installed the appliance into" in out
    box.wait_new_pid(pid)
    box.wait_ready()
    assert _kept(box) == before
    token = before["token"].strip()
    status, body, _ = request("POST", box.url + "/v1/models/efficientnet-lite0/activate",
                              headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body


def test_uninstall_keeps_the_state(box):
    before = _kept(box)
    box.make("uninstall")
    assert box.sh("systemctl is-active appliance", check=False).strip() != "active"
    assert box.sh("ls /opt/appliance /etc/systemd/system/appliance.service 2>&1",
                  check=False).count("No such file") == 2
    assert get(box.url + "/healthz")[0] == 0
    assert _kept(box) == before
