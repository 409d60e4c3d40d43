"""Installing a bundle from an archive, as the owner asked: stream to staging with a size
cap, extract with every member checked by this code (never `tarfile.extractall`), validate
the manifest and sha256, create the first session in a separate process with memory and
time limits and run it on zeros and on real-looking pictures (appliance.probe), then swap it
in atomically, keeping the previous version as last-known-good. The server itself reads
only what the schema caps (manifest, labels) before the probe has passed.
"""

from __future__ import annotations

import errno
import gzip
import os
import posixpath
import resource
import shutil
import subprocess
import sys
import tarfile
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from appliance import bundle as bundles
from appliance import probe as prober
from appliance.errors import BadRequest, BundleError, InsufficientStorage, PayloadTooLarge

if TYPE_CHECKING:
    from appliance.config import Models
    from appliance.engine import Runner
    from appliance.registry import Registry

STAGING = ".staging"
MAX_FILES = 32
CHUNK = 1 << 20
LIBRARIES = (".so", ".dll", ".dylib", ".pyd")
PROBE_MEMORY_MB = 512  # the default of models.probe_memory_mb
PROBE_LOAD_S = 120  # creating the session of a big model on a slow board
PROBE_RUNS = 4  # zeros, a photograph, noise, white: see appliance.probe
# One thread for numpy's BLAS and one malloc arena, so that the probe's memory is what the
# model takes, not what this machine's core count reserves.
PROBE_ENV = {"ORT_DISABLE_TELEMETRY": "1", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"}


def staging_root(models_dir: Path) -> Path:
    return models_dir / STAGING


def clean_staging(models_dir: Path) -> None:
    """Remove whatever an interrupted install left (kill -9 mid-upload)."""
    shutil.rmtree(staging_root(models_dir), ignore_errors=True)


def receive(stream: BinaryIO, dest: Path, cap: int) -> int:
    """Copy an upload to `dest`, refusing it past `cap` bytes. Raises PayloadTooLarge."""
    total = 0
    with open(dest, "wb") as out:
        while chunk := stream.read(CHUNK):
            total += len(chunk)
            if total > cap:
                raise PayloadTooLarge(f"the archive is over {cap // (1 << 20)} MB, the "
                                      "install limit (models.max_install_mb)")
            out.write(chunk)
    if total == 0:
        raise BadRequest("the request has no body: send the bundle as a .tar.gz "
                         "(curl -T bundle.tar.gz ...)")
    return total


def extract(archive: Path, dest: Path, max_bytes: int) -> Path:
    """Unpack a .tar.gz bundle into `dest`; returns the folder holding manifest.json.

    Raises BadRequest (a member that is a link, a device, a path out of the folder, or not
    a gzip tar at all) or PayloadTooLarge (past the size or file-count cap).
    """
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            _unpack(tar, dest, max_bytes)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadRequest(f"the upload is not a readable .tar.gz bundle ({exc}): pack it with "
                         "tar -czf NAME.tar.gz -C models NAME") from None
    return _bundle_folder(dest)


def _unpack(tar: tarfile.TarFile, dest: Path, max_bytes: int) -> None:
    written = files = 0
    for member in tar:
        path = _safe_path(member)
        files += 1
        if files > MAX_FILES:
            raise PayloadTooLarge(f"the archive has more than {MAX_FILES} files; a bundle is a "
                                  "handful")
        try:
            if member.isdir():
                (dest / path).mkdir(parents=True, exist_ok=True)
                continue
            written = _write_member(tar, member, dest / path, written, max_bytes)
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            raise BadRequest(f"archive member {member.name!r} clashes with another member "
                             "(a file and a folder of the same name)") from None


def _safe_path(member: tarfile.TarInfo) -> str:
    name = member.name
    if not (member.isfile() or member.isdir()):
        kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                else "a device node" if member.ischr() or member.isblk() else "a special file")
        raise BadRequest(f"archive member {name!r} is {kind}; a bundle holds plain files only")
    if any(ord(c) < 32 for c in name):
        raise BadRequest(f"archive member {name!r} has control characters in its name")
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal.startswith("..") or "\\" in name or normal == "..":
        raise BadRequest(f"archive member {name!r} points outside the bundle")
    if normal.lower().endswith(LIBRARIES):
        raise BundleError(f"archive member {name!r} is a shared library: the box never loads "
                          "code from a bundle")
    if normal == "." and member.isfile():
        raise BadRequest(f"archive member {name!r} is a file without a name")
    return "" if normal == "." else normal


def _write_member(tar, member, target: Path, written: int, max_bytes: int) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    first = True
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)  # counted as read, so a lying header cannot help a bomb
            if written > max_bytes:
                raise PayloadTooLarge(f"the archive unpacks to more than "
                                      f"{max_bytes // (1 << 20)} MB, the install limit")
            if first and chunk.startswith(b"\x7fELF"):
                raise BundleError(f"archive member {member.name!r} is a program or shared "
                                  "library: the box never loads code from a bundle")
            first = False
            out.write(chunk)
    return written


def _bundle_folder(root: Path) -> Path:
    if (root / bundles.MANIFEST).is_file():
        return root
    inner = [p for p in root.iterdir() if p.is_dir()]
    if len(inner) == 1 and (inner[0] / bundles.MANIFEST).is_file():
        return inner[0]
    raise BadRequest("the archive holds no manifest.json at its top or in one folder")


def probe(folder: Path, timeout_s: float = prober.DEFAULT_TIMEOUT_S,
          memory_mb: int = PROBE_MEMORY_MB, load_s: float = PROBE_LOAD_S) -> None:
    """Load the model in a child process limited to `memory_mb` of data (RLIMIT_DATA: what
    it allocates, not the libraries it maps) and run it on each probe input within
    `timeout_s`; the whole child gets `load_s` more for creating its session.

    Raises BundleError (422) with the child's reason, or saying how and on which input it
    died.
    """
    memory = memory_mb << 20

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))

    seconds = load_s + PROBE_RUNS * (timeout_s + 1)
    try:
        done = subprocess.run([sys.executable, "-m", "appliance.probe", str(folder),
                               repr(float(timeout_s))], capture_output=True, text=True,
                              timeout=seconds, preexec_fn=limits,
                              env={**os.environ, **PROBE_ENV})
    except subprocess.TimeoutExpired as exc:
        raise BundleError(f"the model cannot be served: it did not load and run within "
                          f"{seconds:g} s{_during(exc.stdout)}") from None
    if done.returncode == 0:
        return
    raise BundleError(f"the model cannot be served: {_reason(done, timeout_s, memory_mb)}")


def _reason(done: subprocess.CompletedProcess, timeout_s: float, memory_mb: int) -> str:
    lines = done.stdout.strip().splitlines()
    if done.returncode < 0:
        return (f"onnxruntime crashed (signal {-done.returncode}){_during(done.stdout)}, "
                f"with the probe's memory limit of {memory_mb} MB (models.probe_memory_mb)")
    reason = lines[-1] if lines else "no reason given"
    if done.returncode == prober.EXIT_TIMEOUT:
        return f"{reason} (models.timeout_s): it would hold a core for as long on such a picture"
    if done.returncode == prober.EXIT_MEMORY:
        return f"{reason}, over the probe's limit of {memory_mb} MB (models.probe_memory_mb)"
    return reason


def _during(stdout: str | bytes | None) -> str:
    """' on INPUT' for the last probe input the child announced, or ''."""
    text = stdout.decode(errors="replace") if isinstance(stdout, bytes) else (stdout or "")
    inputs = [line[len("input: "):] for line in text.splitlines() if line.startswith("input: ")]
    return f" on {inputs[-1]}" if inputs else " while loading"


def install(registry: Registry, unpack: Callable[[Path], Path], name: str | None,
            settings: Models) -> tuple[Runner, bool]:
    """The one install path (PUT /v1/models/NAME and `appliance install`): `unpack(staging)`
    puts the bundle in a fresh staging folder of the models directory (`archive`,
    `folder`); its manifest, labels and sha256 are checked (its name must be `name` when
    given), a child process probes it under models.timeout_s and models.probe_memory_mb,
    and the registry swaps it in (the previous version serves until the new one is warm).
    The staging folder is removed whatever happens. Returns the runner and whether it
    replaced a version. Raises BadRequest, PayloadTooLarge, BundleError, ModelLoadError,
    or InsufficientStorage for a full disk (nothing installed)."""
    staging = new_staging(registry.models_dir)
    try:
        found = bundles.read(unpacked := unpack(staging))  # manifest and labels, capped
        if name is not None and found.name != name:
            raise BundleError(f"the bundle's manifest names it {found.name!r}, not {name!r}: "
                              f"PUT it to /v1/models/{found.name}")
        probe(unpacked, settings.timeout_s, settings.probe_memory_mb)
        return registry.install(unpacked, found.name)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise InsufficientStorage(f"the disk holding {registry.models_dir} is full: nothing "
                                  "was installed and the previous version still serves; "
                                  "free some space and try again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def archive(receive_into: Callable[[Path], object], max_bytes: int) -> Callable[[Path], Path]:
    """An `unpack` for `install`: the .tar.gz that `receive_into(path)` writes, extracted
    (at most `max_bytes` unpacked)."""
    def unpack(staging: Path) -> Path:
        upload = staging / "upload.tar.gz"
        receive_into(upload)
        return extract(upload, staging / "unpacked", max_bytes)

    return unpack


def folder(source: Path) -> Callable[[Path], Path]:
    """An `unpack` for `install`: a copy of the bundle folder `source`."""
    def unpack(staging: Path) -> Path:
        copy = staging / "unpacked"
        shutil.copytree(source, copy, symlinks=True)  # a symlink in it is refused by read
        return copy

    return unpack


def new_staging(models_dir: Path) -> Path:
    folder = staging_root(models_dir) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder
