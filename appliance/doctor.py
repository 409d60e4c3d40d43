"""`appliance doctor`: what this box has and lacks, each finding with its fix.

Checks are small functions returning findings; paths (/proc, /dev) are parameters so tests
can fake a machine. A FAIL blocks serving and makes the exit code non-zero.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Settings

OK, WARN, FAIL = "ok", "WARN", "FAIL"
SANE_AFTER = time.mktime((2025, 1, 1, 0, 0, 0, 0, 0, -1))


@dataclass(frozen=True)
class Finding:
    level: str
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level:4} {self.name}: {self.detail}"
        return f"{text}\n     fix: {self.fix}" if self.fix and self.level != OK else text


def cpu(proc: Path = Path("/proc")) -> Finding:
    """The instructions that make INT8 fast, and which bundle variants suit them."""
    try:
        info = (proc / "cpuinfo").read_text()
    except OSError:
        return Finding(WARN, "cpu", "cannot read /proc/cpuinfo")
    flags = set(info.replace(":", " ").split())
    if "asimddp" in flags:
        return Finding(OK, "cpu", "arm64 with dot product (asimddp): INT8 bundles for "
                       "--target arm64 run fast")
    if flags & {"avx512_vnni", "avx_vnni"}:
        return Finding(OK, "cpu", "x86 with VNNI: INT8 bundles for --target x86-vnni "
                       "(U8S8) run about 2x faster than float")
    if "avx2" in flags:
        return Finding(OK, "cpu", "x86 without VNNI: use --target x86 (reduce_range) or float")
    return Finding(WARN, "cpu", "no dot-product or VNNI instructions: INT8 may not beat float",
                   "convert with appliance-convert on this board; it ships float when INT8 "
                   "is not faster")


def providers() -> Finding:
    import onnxruntime

    found = onnxruntime.get_available_providers()
    return Finding(OK, "onnxruntime", f"{onnxruntime.__version__}, providers "
                   f"{', '.join(found)}")


def devices(dev: Path, pattern: str, name: str, needed: bool, group: str) -> Finding:
    """Presence and permission of device nodes such as gpiochip*, video*, fb*."""
    nodes = sorted(dev.glob(pattern))
    level = FAIL if needed else WARN
    if not nodes:
        return Finding(level if needed else OK, name, f"no {dev / pattern}" +
                       ("" if needed else " (not configured, not needed)"),
                       "connect it, or check that its driver is loaded")
    blocked = [str(n) for n in nodes if not os.access(n, os.R_OK | os.W_OK)]
    if blocked:
        return Finding(level, name, f"no permission on {', '.join(blocked)}",
                       f"add the service's user to the '{group}' group "
                       f"(sudo usermod -aG {group} USER), then log in again")
    return Finding(OK, name, ", ".join(str(n) for n in nodes))


def port(host: str, number: int) -> Finding:
    """Whether the configured port is free (binding it briefly; nothing is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, number))
        except OSError as exc:
            return Finding(FAIL, "port", f"{host}:{number} is not free ({exc.strerror})",
                           "stop what uses it (ss -ltnp) or set server.port")
    return Finding(OK, "port", f"{host}:{number} is free")


def bundles(models_dir: Path, settings: Settings) -> list[Finding]:
    """Every bundle's checksum and a real onnxruntime load."""
    from appliance import bundle
    from appliance.engine import Runner
    from appliance.errors import ApplianceError

    found = []
    for folder in bundle.folders(models_dir):
        try:
            with Runner(bundle.read_installed(folder), settings.models) as runner:
                runner.warm_up()
            found.append(Finding(OK, f"model {folder.name}", "checksum and load ok"))
        except ApplianceError as exc:
            found.append(Finding(WARN, f"model {folder.name}", exc.message,
                                 "reinstall the bundle or rebuild it"))
    if not any(f.level == OK for f in found):
        found.append(Finding(FAIL, "models", f"no bundle in {models_dir} loads",
                             "build the defaults (make models) or install a bundle"))
    return found


def disk_and_memory(state_dir: Path, proc: Path = Path("/proc")) -> list[Finding]:
    target = state_dir if state_dir.exists() else state_dir.parent
    free_mb = shutil.disk_usage(target).free / 1e6
    disk = Finding(OK if free_mb > 200 else WARN, "disk", f"{free_mb:.0f} MB free for "
                   f"{state_dir}", "free some space: captures and bundles need room")
    try:
        meminfo = (proc / "meminfo").read_text()
        available = int(meminfo.split("MemAvailable:")[1].split()[0]) / 1024
        memory = Finding(OK if available > 300 else WARN, "memory",
                         f"{available:.0f} MB available", "close other programs or use "
                         "fewer bundles")
    except (OSError, IndexError, ValueError):
        memory = Finding(WARN, "memory", "cannot read /proc/meminfo")
    return [disk, memory]


def writable(state_dir: Path) -> Finding:
    probe = state_dir / ".doctor-probe"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Finding(WARN, "state", f"{state_dir} is not writable ({exc.strerror}): the box "
                       "serves, but tokens, captures and the active model are not kept",
                       "give the service's user this folder, or point state.dir elsewhere")
    return Finding(OK, "state", f"{state_dir} is writable")


def root_filesystem() -> Finding:
    read_only = bool(os.statvfs("/").f_flag & os.ST_RDONLY)
    return Finding(OK, "root", "read-only (overlay): good for power cuts" if read_only else
                   "writable; the read-only overlay of Raspberry Pi OS protects it from "
                   "power cuts (see the README)")


def clock(now: float | None = None) -> Finding:
    moment = time.time() if now is None else now
    if moment < SANE_AFTER:
        return Finding(WARN, "clock", time.strftime("%Y-%m-%d %H:%M", time.localtime(moment)) +
                       " is before 2025: the clock was never set",
                       "a Pi has no battery clock: enable NTP (timedatectl set-ntp true) or "
                       "add an RTC; timeouts use a monotonic clock and do not care")
    return Finding(OK, "clock", time.strftime("%Y-%m-%d %H:%M", time.localtime(moment)))


def examine(settings: Settings, dev: Path = Path("/dev"),
            proc: Path = Path("/proc")) -> list[Finding]:
    """Every check, in the order a person would fix them."""
    pins = [settings.buttons.next, settings.buttons.previous, settings.buttons.capture]
    found = [cpu(proc), providers(),
             devices(dev, "gpiochip*", "gpio", any(p >= 0 for p in pins), "gpio"),
             devices(dev, "video*", "camera", settings.camera.kind == "v4l2", "video"),
             devices(dev, "fb*", "framebuffer", settings.display.kind == "framebuffer",
                     "video"),
             port(settings.server.host, settings.server.port)]
    found += bundles(Path(settings.models.dir), settings)
    state = Path(settings.state.dir)
    found += [writable(state), *disk_and_memory(state, proc), root_filesystem(), clock()]
    return found


def report(findings: list[Finding]) -> tuple[str, int]:
    """The printed report and the exit code (1 when something blocks serving)."""
    failed = [f for f in findings if f.level == FAIL]
    summary = (f"{len(failed)} problem(s) block serving" if failed else
               "nothing blocks serving")
    return "\n".join([*(f.line() for f in findings), summary]), 1 if failed else 0
