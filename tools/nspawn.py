"""A real systemd in a container, for the end-to-end test of the unit (tests/test_systemd_boot.py).

`ensure_root()` makes a Debian 12 root with debootstrap once and keeps it in a cache folder
outside the checkout (/var/tmp/appliance-nspawn/root-KEY, KEY a hash of the recipe): it is
built in a temporary folder and renamed into place only when complete, so a half-built root
is never used. `Container(root)` boots it with `systemd-nspawn -b` over a throw-away overlay
(`--volatile=overlay`: the cached root is never written), waits for `running`, runs commands
inside with nsenter and powers it off in every case.

The container shares this machine's network (no --private-network): the box inside is
reached on 127.0.0.1 like any other server here, and its mDNS announcement goes out on the
real interfaces, where a browser on this machine sees it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path

CACHE = Path(os.environ.get("APPLIANCE_NSPAWN_CACHE", "/var/tmp/appliance-nspawn"))
SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "ca-certificates",
            "make", "git", "curl", "procps")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
COMPLETE = ".appliance-root-complete"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What pip needs inside to reach the index as it does here: the CA bundle and pip's settings.
PIP_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/xdg/pip", "/etc/pip.conf")
TOOLS = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap",
         "nsenter": "util-linux"}


class NspawnError(RuntimeError):
    """The root could not be built or the container could not boot or be driven."""


def unavailable() -> str | None:
    """Why no container can be booted here (a missing package, not root), or None."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian's {package} package)"
    if os.geteuid() != 0:
        return "systemd-nspawn needs root"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup file system at /sys/fs/cgroup"
    return None


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org."""
    deb822 = sources / "sources.list.d" / "debian.sources"
    if deb822.is_file():
        for stanza in deb822.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:(.*)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
    one_line = sources / "sources.list"
    if one_line.is_file():
        found = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", one_line.read_text(),
                          re.M)
        if found:
            return found.group(1)
    return DEFAULT_MIRROR


def recipe(mirror: str) -> list[str]:
    """The debootstrap command (without its target folder): what the cache key hashes."""
    return ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE,
            "TARGET", mirror]


def root_path(cache: Path, command: list[str]) -> Path:
    """Where the root built by `command` is kept: one folder per recipe."""
    key = hashlib.sha256(json.dumps(command).encode()).hexdigest()[:12]
    return cache / f"root-{key}"


def ensure_root(cache: Path = CACHE, mirror: str | None = None, timeout: float = 1800) -> Path:
    """The cached root, built first when absent; raises NspawnError when debootstrap fails.
    A lock keeps two builders apart; a leftover half-built folder is removed, never used."""
    command = recipe(mirror or debian_mirror())
    root = root_path(cache, command)
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / COMPLETE).is_file():
            return root
        for stale in cache.glob(f".build-{root.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        _build(command, root, cache / f".build-{root.name}-{os.getpid()}", timeout)
    return root


def _build(command: list[str], root: Path, scratch: Path, timeout: float) -> None:
    log = scratch.with_suffix(".log")
    try:
        with open(log, "w") as out:
            done = subprocess.run([c if c != "TARGET" else str(scratch) for c in command],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                  check=False)
        if done.returncode != 0:
            raise NspawnError(f"debootstrap failed ({done.returncode}): "
                              + log.read_text()[-1500:])
        _configure(scratch)
        (scratch / COMPLETE).write_text(json.dumps(command) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        scratch.rename(root)
    except subprocess.TimeoutExpired as exc:
        raise NspawnError(f"debootstrap took over {timeout:.0f} s") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        log.unlink(missing_ok=True)


def _configure(root: Path) -> None:
    # No login prompt on the console: nobody types there, and it keeps the log readable.
    for unit in ("console-getty.service", "getty@.service"):
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def pip_environment(environ: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The PIP_* settings of this machine and the local files they name (CA bundle, pip.conf
    and its constraints folder, wheel folders), to pass into the container read-only."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if k.startswith("PIP_")}
    files = [*PIP_FILES, environ.get("PIP_CONFIG_FILE", ""), environ.get("PIP_CERT", ""),
             environ.get("PIP_CONSTRAINT", ""),
             *environ.get("PIP_FIND_LINKS", "").split()]
    return env, sorted({f for f in files if f.startswith("/") and Path(f).exists()})


class Container:
    """A booted container over `root`; a context manager that always powers it off."""

    def __init__(self, root: Path, binds_ro: Iterable[str] = (), boot_timeout: float = 120,
                 log: Path | None = None) -> None:
        self.root = root
        self.binds_ro = list(binds_ro)
        self.boot_timeout = boot_timeout
        self.log_path = log or root.parent / f"boot-{os.getpid()}.log"
        self.process: subprocess.Popen | None = None
        self.pid1: int | None = None

    def __enter__(self) -> Container:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Boot and wait for `running` (or `degraded`); raises NspawnError with the console."""
        command = ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet",
                   "--volatile=overlay", "--console=read-only", "-D", str(self.root),
                   *(f"--bind-ro={path}" for path in self.binds_ro), "-b"]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.pid1 = self._find_init()
        self._wait_booted()

    def _wait_booted(self) -> None:
        # systemctl fails until the container's manager answers on its bus: ask again.
        deadline, state = time.monotonic() + self.boot_timeout, ""
        while time.monotonic() < deadline and self.alive():
            state = self.run(["systemctl", "is-system-running", "--wait"],
                             timeout=self.boot_timeout, check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            if state in ("maintenance", "stopping"):
                break
            time.sleep(0.5)
        raise NspawnError(f"the container reached {state or 'no state'!r}:\n{self.console()}")

    def _find_init(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NspawnError(f"systemd-nspawn exited ({self.process.returncode}):\n"
                                  + self.console())
            for child in _children(self.process.pid):
                if _comm(child) == "systemd":
                    return child
            time.sleep(0.1)
        raise NspawnError("the container's systemd did not start:\n" + self.console())

    def console(self) -> str:
        """The last lines systemd-nspawn and the container's console wrote."""
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def run(self, command: list[str], env: dict[str, str] | None = None, timeout: float = 60,
            check: bool = True, input: bytes | str | None = None
            ) -> subprocess.CompletedProcess:
        """`command` inside the container as root, with a clean environment plus `env`;
        raises NspawnError when it exits non-zero and `check` is set."""
        variables = [f"{k}={v}" for k, v in {"PATH": PATH, "LANG": "C.UTF-8",
                                              **(env or {})}.items()]
        full = ["nsenter", "-t", str(self.pid1), "-a", "env", "-i", *variables, *command]
        done = subprocess.run(full, capture_output=True, timeout=timeout, input=input,
                              text=not isinstance(input, bytes), check=False)
        if check and done.returncode != 0:
            raise NspawnError(f"{' '.join(command)} exited {done.returncode}:\n"
                              f"{_text(done.stdout)[-2000:]}\n{_text(done.stderr)[-2000:]}")
        return done

    def copy_in(self, files: Iterable[tuple[Path, str]], dest: str) -> None:
        """Each (host file, relative name) into the folder `dest` inside, as one tar stream
        (the root is an overlay in the container's own mount namespace)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path, name in files:
                tar.add(str(path), arcname=name, recursive=False)
        self.run(["mkdir", "-p", dest])
        self.run(["tar", "-C", dest, "--no-same-owner", "-xf", "-"], input=buffer.getvalue(),
                 timeout=120)

    def write(self, path: str, text: str) -> None:
        """A file inside, created with its folder."""
        self.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "-", path],
                 input=text)

    def close(self, timeout: float = 30) -> None:
        """Power off (SIGTERM to systemd-nspawn halts the container cleanly), then kill
        whatever is left after `timeout` seconds; nothing of the container outlives this."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in (self.pid1, self.process.pid):
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
        self.log_path.unlink(missing_ok=True)  # what failed was already raised with its tail

    def alive(self) -> bool:
        """Whether the container's init still runs."""
        return self.pid1 is not None and Path(f"/proc/{self.pid1}").exists()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""
