"""detect: anchors in MediaPipe's order, box decoding, NMS, and boxes in the sender's pixels."""

import numpy as np
import pytest

from appliance import tasks
from appliance.bundle import Bundle, parse_manifest
from appliance.errors import BadRequest
from appliance.tasks import detect
from appliance.tasks.base import Context
from appliance.tasks.preprocess import Geometry, for_source
from tests import models as tiny

SIZE = (128, 128)
DETECT = tasks.get("detect")
OUTPUT = {"labels": "labels.txt", "box_format": "ssd-anchors", "strides": [8, 16, 16, 16],
          "anchor_offset": 0.5, "anchors_per_cell": 2, "boxes_tensor": 0, "scores_tensor": 1,
          "score_clip": 80.0, "score_threshold": 0.5, "nms_iou": 0.3, "nms": "weighted"}


def _bundle(**output) -> Bundle:
    data = tiny.manifest("faces", "detect", output={**OUTPUT, **output})
    data["input"]["size"] = list(SIZE)
    data["input"]["resize"] = "letterbox"
    return Bundle(path=None, manifest=parse_manifest(data), labels=["face"])


def test_anchor_grid_matches_mediapipe_short_range():
    grid = detect.anchors(SIZE, [8, 16, 16, 16], 0.5, 2)
    assert grid.shape == (896, 2)
    assert grid[0].tolist() == [0.5 / 16, 0.5 / 16] and grid[1].tolist() == grid[0].tolist()
    # the 16-stride layers share cells: six anchors per cell, cell by cell
    assert (grid[512:518] == grid[512]).all() and grid[518][0] > grid[512][0]
    assert grid[-1].tolist() == [7.5 / 8, 7.5 / 8]


def _raw(face_anchor: int, score_logit: float = 5.0):
    boxes = np.zeros((1, 896, 16), np.float32)
    boxes[0, face_anchor, 2:4] = [32, 32]  # a 32 px box centred on the anchor
    logits = np.full((1, 896, 1), -10.0, np.float32)
    logits[0, face_anchor] = score_logit
    return [boxes, logits]


def test_one_box_decoded_into_source_pixels():
    geometry = Geometry((256, 256), 0.5, 0.5)
    result = DETECT.postprocess(_raw(0), Context(_bundle(), geometry, {"threshold": 0.5}))
    (found,) = result.body["detections"]
    assert found["label"] == "face" and found["score"] == pytest.approx(0.9933, abs=1e-4)
    # anchor 0 is at (4, 4) px of 128; box 32 px wide: (-12..20) px, clipped, then x2
    assert found["box"] == [0.0, 0.0, 40.0, 40.0]


def test_letterbox_padding_is_removed():
    geometry = Geometry((256, 128), 0.5, 0.5, pad_x=0, pad_y=32)
    anchor = 512 + (4 * 8 + 4) * 6  # 16-stride cell (4, 4): centre (72, 72) px
    ctx = Context(_bundle(), geometry, {"threshold": 0.5})
    (found,) = DETECT.postprocess(_raw(anchor), ctx).body["detections"]
    assert found["box"] == [112.0, 48.0, 176.0, 112.0]  # (56 - 32) / 0.5 = 48


def test_threshold_and_weighted_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    merged = detect.nms(boxes, scores, 0.3, weighted=True, limit=10)
    assert [round(s, 2) for _, s in merged] == [0.9, 0.8]
    assert merged[0][0].tolist() == pytest.approx([0.4, 0.4, 10.4, 10.4])
    hard = detect.nms(boxes, scores, 0.3, weighted=False, limit=1)
    assert len(hard) == 1 and hard[0][0].tolist() == [0, 0, 10, 10]
    ctx = Context(_bundle(), Geometry((128, 128), 1, 1), {"threshold": 0.5})
    none = DETECT.postprocess(_raw(0, score_logit=-1.0), ctx)
    assert none.body == {"detections": []}


def test_options():
    bundle = _bundle()
    assert DETECT.parse({}, bundle) == {"threshold": 0.5}
    assert DETECT.parse({"threshold": "0.9"}, bundle) == {"threshold": 0.9}
    with pytest.raises(BadRequest, match="between 0 and 1"):
        DETECT.parse({"threshold": "2"}, bundle)
    with pytest.raises(BadRequest, match="must be a number"):
        DETECT.parse({"threshold": "x"}, bundle)


def test_wrong_anchor_count_is_an_error():
    with pytest.raises(ValueError, match="for 896 anchors"):
        DETECT.postprocess([np.zeros((1, 10, 16)), np.zeros((1, 10, 1))],
                           Context(_bundle(), Geometry((128, 128), 1, 1), {"threshold": 0.5}))


def test_geometry_for_a_reduced_scale_decode():
    reduced = Geometry((500, 250), 0.256, 0.256, 0, 32)
    full = for_source(reduced, (2000, 1000))
    assert full.source_size == (2000, 1000)
    assert full.scale_x == pytest.approx(0.064) and full.pad_y == 32
    assert for_source(reduced, (500, 250)) is reduced
