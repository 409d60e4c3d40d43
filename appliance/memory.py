"""glibc malloc settings for a long-running server on a small board.

By default glibc gives each thread that allocates its own arena (up to eight per core) and
keeps large freed blocks in the heap once it has seen one freed (its mmap threshold grows).
For this server that meant every model's activations and every upload staying resident
after use: `appliance serve` with the three default bundles sat at about 250 MB after a few
requests, about 100 MB of it freed memory that was never returned. Two arenas and a fixed
mmap threshold give it back. Values the owner set in the environment (MALLOC_ARENA_MAX,
MALLOC_MMAP_THRESHOLD_) are left alone; other C libraries (musl) are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD = 256 * 1024  # blocks this large or larger go back to the OS when freed


def tune_malloc() -> list[str]:
    """Apply the settings above where glibc is present; returns the ones applied."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return []
    applied = []
    for env, option, value in (("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
                               ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD)):
        if env not in os.environ and mallopt(option, value) == 1:
            applied.append(f"{env}={value}")
    return applied
