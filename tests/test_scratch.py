"""Each thread's input tensor is used again only once nothing holds it."""

import threading

import numpy as np
from PIL import Image

from appliance.tasks import preprocess, scratch
from tests.test_preprocess import spec


def test_a_thread_gets_its_array_back_once_the_last_tensor_is_gone():
    first = scratch.floats((3, 4, 6))
    address = first.ctypes.data
    del first
    assert scratch.floats((3, 4, 6)).ctypes.data == address


def test_an_array_still_held_is_never_handed_out_again():
    held = scratch.floats((3, 4, 6))
    view = held[np.newaxis]  # a queued run or a calibration list keeps a view
    del held
    again = scratch.floats((3, 4, 6))
    assert not np.shares_memory(again, view)


def test_a_tensor_kept_by_its_caller_is_not_overwritten_by_the_next_picture():
    red, blue = Image.new("RGB", (6, 4), (255, 0, 0)), Image.new("RGB", (6, 4), (0, 0, 255))
    for layout in ("NCHW", "NHWC"):
        first, _ = preprocess.prepare(red, spec(layout=layout))
        kept = first.copy()
        second, _ = preprocess.prepare(blue, spec(layout=layout))
        assert np.array_equal(first, kept) and not np.array_equal(first, second)


def test_other_shapes_and_other_threads_get_their_own():
    mine = scratch.floats((3, 4, 6))
    address = mine.ctypes.data
    del mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(scratch.floats((3, 4, 6)).ctypes.data))
    thread.start()
    thread.join()
    assert theirs[0] != address
    assert scratch.floats((3, 5, 6)).shape == (3, 5, 6)


def test_without_reference_counts_to_trust_no_array_is_kept(monkeypatch):
    monkeypatch.setattr(scratch, "REUSE", False)
    first = scratch.floats((3, 4, 6))
    assert getattr(scratch._kept, "array", "unset") is None
    del first
    assert scratch.floats((3, 4, 6)).shape == (3, 4, 6)
    assert getattr(scratch._kept, "array", "unset") is None


def test_arrays_over_the_cap_are_not_kept():
    shape = (3, 736, 736)  # OCR's page: 6.5 MB
    kept = scratch.floats((3, 4, 6))
    del kept
    assert scratch.floats(shape).nbytes > scratch.MAX_KEPT_BYTES
    assert getattr(scratch._kept, "array", "unset") is None
