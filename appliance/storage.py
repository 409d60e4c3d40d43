"""Power-cut-safe small files: write to a temporary file, fsync, rename, fsync the folder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> None:
    """Replace `path` with `text` (UTF-8) so that a power cut leaves the old or the new file,
    never half. Raises OSError (read-only or full file system, permissions)."""
    write_bytes_atomic(path, text.encode("utf-8"), mode)


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike) -> str | None:
    """The stripped text of `path`, or None when it is missing or unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that a power cut leaves the old or the new file, never
    half. Raises OSError (read-only or full file system, permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
