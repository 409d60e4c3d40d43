import numpy as np
import pytest

from appliance.bundle import parse_manifest
from tests import models as tiny
from tests.conftest import image_bytes
from tools import calibration
from tools.errors import ConvertError

SPEC = parse_manifest(tiny.manifest("x", "classify")).input


def test_prepare_uses_the_box_preprocessing_and_skips_junk():
    samples = calibration.prepare([("red.jpg", image_bytes((255, 0, 0))), ("junk", b"nope")],
                                  "classify", SPEC, "calibration")
    assert [s.name for s in samples] == ["red.jpg"]
    assert samples[0].tensor.shape == (1, 3, 8, 8)
    assert samples[0].tensor[0, 0].mean() == pytest.approx(1.0, abs=0.01)


def test_prepare_with_nothing_readable():
    with pytest.raises(ConvertError, match="no readable images for calibration"):
        calibration.prepare([("junk", b"nope")], "classify", SPEC, "calibration")


def _samples(n):
    return [calibration.Sample(str(i), np.zeros((1, 3, 8, 8), np.float32)) for i in range(n)]


def test_split_holds_out_every_fourth():
    calib, held = calibration.split(_samples(20), None)
    assert [s.name for s in held] == ["3", "7", "11", "15", "19"]
    assert not {s.name for s in held} & {s.name for s in calib}


def test_split_minimums():
    with pytest.raises(ConvertError, match="only 2 held-out images"):
        calibration.split(_samples(8), None)
    with pytest.raises(ConvertError, match="only 3 calibration images"):
        calibration.split(_samples(3), _samples(4))


def test_subsample_spreads_evenly_and_reader_rewinds():
    picked = calibration.subsample(_samples(10), 5)
    assert [s.name for s in picked] == ["0", "2", "4", "6", "8"]
    reader = calibration.Reader("input", picked)
    assert len([reader.get_next() for _ in range(5)]) == 5 and reader.get_next() is None
    reader.rewind()
    assert reader.get_next() is not None


def test_read_folder(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"1")
    (tmp_path / "sub").mkdir()
    assert calibration.read_folder(tmp_path) == [("a.jpg", b"1")]
    with pytest.raises(ConvertError, match="does not exist"):
        calibration.read_folder(tmp_path / "nope")
