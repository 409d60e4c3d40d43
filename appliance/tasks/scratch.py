"""Each thread's input tensor, used again for its next picture once nothing holds it.

The box gives glibc a fixed mmap threshold (appliance/memory.py, so freed memory goes back
to the system), and a model's float input is larger than it (600 KB at 224x224): every
request then mapped fresh pages for its tensor, took a page fault on each one as it was
written, and unmapped them after the run. In the live server that was 0.4-0.5 ms of a lone
request's preprocessing. `floats` hands a thread back its last array of the same shape when
no other reference to it is left (the request that used it is over, and no queued run or
calibration list kept it), and a new one otherwise.

"No other reference" is read from `sys.getrefcount`, whose count of a local name CPython 3.14
changes (borrowed loads): there, and on interpreters without reference counts, every call
gets a new array, as before.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

MAX_KEPT_BYTES = 2 << 20  # a 416x416 float input; larger ones (OCR's pages) are not kept
_kept = threading.local()
# References to a kept array that is free: `_kept`'s, the local name, getrefcount's argument.
FREE_REFS = 3
REUSE = sys.implementation.name == "cpython" and sys.version_info < (3, 14)


def floats(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array of `shape`: this thread's kept one when it is free and
    of that shape, else a new one, kept when no larger than MAX_KEPT_BYTES. Raises nothing
    beyond numpy's MemoryError."""
    array = getattr(_kept, "array", None)
    if array is not None and array.shape == shape and sys.getrefcount(array) == FREE_REFS:
        return array
    array = np.empty(shape, dtype=np.float32)
    _kept.array = array if REUSE and array.nbytes <= MAX_KEPT_BYTES else None
    return array
