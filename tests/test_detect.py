"""detect: anchors in MediaPipe's order, box decoding, NMS, and boxes in the sender's pixels;
TF SSD heads (`ssd-tf`): TF's anchors, its box coder and per-class NMS."""

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from appliance import tasks
from appliance.bundle import Bundle, parse_manifest
from appliance.errors import BadRequest
from appliance.tasks import detect, ssd
from appliance.tasks.base import Context
from appliance.tasks.preprocess import Geometry, for_source
from tests import models as tiny
from tests.conftest import image_bytes

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
    assert [round(s, 2) for _, s, _ in merged] == [0.9, 0.8]
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


# ---- ssd-tf: a TensorFlow object detection API SSD cut at its raw heads -------------------

SSD_TF = {"labels": "labels.txt", "box_format": "ssd-tf", "feature_maps": [2],
          "min_scale": 0.5, "max_scale": 0.5, "aspect_ratios": [1.0],
          "interpolated_scale_aspect_ratio": 0.0, "reduce_boxes_in_lowest_layer": False,
          "box_scale_factors": [10.0, 10.0, 5.0, 5.0], "background_classes": 1,
          "nms_min_score": 0.4, "nms_iou": 0.6, "nms": "hard", "max_per_class": 100,
          "max_detections": 100, "score_threshold": 0.5}
SSD_LABELS = ["background", "cat", "dog"]
# ssd_mobilenet_v2_coco's anchor generator, as its frozen graph holds it
COCO_SSD = {"feature_maps": [19, 10, 5, 3, 2, 1], "min_scale": 0.2, "max_scale": 0.95,
            "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
            "interpolated_scale_aspect_ratio": 1.0, "reduce_boxes_in_lowest_layer": True}


def _ssd_bundle(**output) -> Bundle:
    data = tiny.manifest("objects", "detect", output={**SSD_TF, **output})
    return Bundle(path=None, manifest=parse_manifest(data), labels=SSD_LABELS)


def test_ssd_tf_anchor_scales_and_ratios_are_tfs():
    specs = ssd.layer_specs([19, 10, 5, 3, 2, 1], 0.2, 0.95, COCO_SSD["aspect_ratios"], 1.0,
                            True)
    # the graph's MultipleGridAnchorGenerator constants (scales; Sqrt inputs: the ratios)
    assert specs[0] == [(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]
    assert [scale for scale, _ in specs[1]] == pytest.approx([0.35] * 5 + [0.41833], abs=1e-5)
    assert [ratio for _, ratio in specs[5]] == [1.0, 2.0, 0.5, 3.0, 0.3333, 1.0]
    assert specs[5][-1][0] == pytest.approx(0.9746794, abs=1e-7)
    grid = ssd.anchors(COCO_SSD)
    assert grid.shape == (1917, 4) and grid.dtype == np.float32 and not grid.flags.writeable
    centre = 0.5 / 19  # layer 0, cell (0, 0): 0.1 square, then 0.2 at 2:1 (wider than high)
    assert grid[0].tolist() == pytest.approx([centre - 0.05, centre - 0.05, centre + 0.05,
                                              centre + 0.05])
    half_h, half_w = 0.1 / math.sqrt(2), 0.1 * math.sqrt(2)
    assert grid[1].tolist() == pytest.approx([centre - half_h, centre - half_w,
                                              centre + half_h, centre + half_w])
    assert grid[3][0] == grid[0][0] and grid[3][1] > grid[0][1]  # next cell: along the row
    last = math.sqrt(0.95) / 2  # the 1x1 layer's interpolated box, centred
    assert grid[-1].tolist() == pytest.approx([0.5 - last, 0.5 - last, 0.5 + last, 0.5 + last])


def test_ssd_tf_box_coder_known_encodings():
    grid = np.array([[0.2, 0.4, 0.6, 0.6]] * 3, np.float32)  # centre (0.4, 0.5), 0.4 x 0.2
    codes = np.array([[0, 0, 0, 0],  # the anchor itself
                      [10, -5, 0, 0],  # moved by one height down, half a width left
                      [0, 0, 5 * math.log(2), 5 * math.log(0.5)]],  # twice as high, half as wide
                     np.float32)
    boxes = ssd.decode(codes, grid, [10, 10, 5, 5])
    np.testing.assert_allclose(boxes, [[0.2, 0.4, 0.6, 0.6], [0.6, 0.3, 1.0, 0.5],
                                       [0.0, 0.45, 0.8, 0.55]], atol=1e-6)


def _heads(scores: dict[tuple[int, int], float], codes: dict[int, list[float]] | None = None):
    """Raw heads for SSD_TF's four anchors (cells of 0.5 at (0.25|0.75, 0.25|0.75), row by
    row): box encodings [1, 4, 1, 4] and logits [1, 4, 3] giving score `p` to (anchor,
    column) and 0.01 elsewhere."""
    raw = np.zeros((1, 4, 1, 4), np.float32)
    for anchor, code in (codes or {}).items():
        raw[0, anchor, 0] = code
    logits = np.full((1, 4, 3), math.log(0.01 / 0.99), np.float32)
    logits[0, :, 0] = 5.0  # the background column is confident everywhere: never a box
    for (anchor, column), p in scores.items():
        logits[0, anchor, column] = math.log(p / (1 - p))
    return [raw, logits]


def test_ssd_tf_suppresses_within_a_class_only():
    # anchor 1 moved left (tx -9: 0.45 of its width) onto anchor 0: IoU 0.45 / 0.55
    outputs = _heads({(0, 1): 0.9, (1, 1): 0.8, (1, 2): 0.7, (3, 2): 0.35},
                     codes={1: [0.0, -9.0, 0.0, 0.0]})
    found = detect.find(outputs, _ssd_bundle().manifest.output, (8, 8), 0.5)
    assert [(cls, round(score, 4)) for _, score, cls in found] == [(1, 0.9), (2, 0.7)]
    assert found[0][0].tolist() == pytest.approx([0.0, 0.0, 0.5, 0.5])  # x0, y0, x1, y1
    assert found[1][0].tolist() == pytest.approx([0.05, 0.0, 0.55, 0.5], abs=1e-6)
    # a looser overlap limit keeps the cat anchor 1 too; the score floor still drops 0.35
    loose = detect.find(outputs, _ssd_bundle(nms_iou=0.9).manifest.output, (8, 8), 0.0)
    assert [(cls, round(score, 4)) for _, score, cls in loose] == [(1, 0.9), (1, 0.8), (2, 0.7)]


def test_ssd_tf_clips_boxes_and_drops_those_left_without_area():
    outputs = _heads({(0, 1): 0.9, (3, 1): 0.8},
                     codes={0: [0.0, 0.0, 5.0, 0.0], 3: [0.0, 30.0, 0.0, 0.0]})
    (found,) = detect.find(outputs, _ssd_bundle().manifest.output, (8, 8), 0.5)
    # anchor 0 e (2.7) times as high: clipped to the top and bottom; anchor 3 moved out
    assert found[0].tolist() == pytest.approx([0.0, 0.0, 0.5, 0.25 + 0.5 * math.e / 2])
    assert found[2] == 1


def test_ssd_tf_limits_per_class_and_in_all_best_first():
    boxes = np.array([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5], [6, 6, 7, 7]], np.float32)
    scores = np.array([0.6, 0.9, 0.7, 0.8], np.float32)
    classes = np.array([1, 1, 2, 2])
    kept = detect.nms(boxes, scores, 0.6, False, limit=10, classes=classes, per_class=1)
    assert [(cls, round(s, 1)) for _, s, cls in kept] == [(1, 0.9), (2, 0.8)]
    kept = detect.nms(boxes, scores, 0.6, False, limit=3, classes=classes)
    assert [(cls, round(s, 1)) for _, s, cls in kept] == [(1, 0.9), (2, 0.8), (2, 0.7)]
    # equal scores keep the input's order (TensorFlow's NMS and its final sort do)
    tied = detect.nms(boxes, np.full(4, 0.5, np.float32), 0.6, False, 10, classes)
    assert [box[0] for box, _, _ in tied] == [0, 2, 4, 6]


def test_ssd_tf_answer_is_labelled_by_score_column():
    ctx = Context(_ssd_bundle(), Geometry((16, 8), 0.5, 1.0), {"threshold": 0.5})
    result = DETECT.postprocess(_heads({(2, 2): 0.95}), ctx)
    # anchor 2: x 0..0.5, y 0.5..1 of the 8 px input; the picture is twice as wide
    assert result.body == {"detections": [{"label": "dog", "score": 0.95,
                                           "box": [0.0, 4.0, 8.0, 8.0]}]}
    assert DETECT.postprocess(_heads({}), ctx).body == {"detections": []}


def test_ssd_tf_outputs_that_do_not_fit_the_anchors_are_an_error():
    ctx = Context(_ssd_bundle(), Geometry((8, 8), 1, 1), {"threshold": 0.5})
    with pytest.raises(ValueError, match="^the model gives 5 boxes and 4 rows of scores for "
                                         "4 anchors$"):
        DETECT.postprocess([np.zeros((1, 5, 1, 4)), np.zeros((1, 4, 3))], ctx)
    with pytest.raises(ValueError, match="are not box encodings"):
        DETECT.postprocess([np.zeros((1, 4, 3))], ctx)


@pytest.mark.parametrize(("change", "message"), [
    ({"feature_maps": []}, "output.feature_maps: the square feature maps' sizes, lowest layer "
                           "first, all above 0, are required for box_format ssd-tf"),
    ({"aspect_ratios": [1.0, 0]}, "output.aspect_ratios: the anchors' aspect ratios (width / "
                                  "height), all above 0, are required for box_format ssd-tf"),
    ({"box_scale_factors": [10, 10, 5]}, "output.box_scale_factors: must have 4 items "
                                         "(got [10, 10, 5])"),
    ({"min_scale": 0.9}, "output.min_scale: 0.9 is above max_scale 0.5"),
    ({"background_classes": -1}, "output.background_classes: must be from 0 (no background "
                                 "column) to 999"),
    ({"reduce_boxes_in_lowest_layer": 1}, "output.reduce_boxes_in_lowest_layer: must be true "
                                          "or false, got int"),
])
def test_ssd_tf_manifest_fields_are_checked(change, message):
    with pytest.raises(ValueError) as error:
        parse_manifest(tiny.manifest("objects", "detect", output={**SSD_TF, **change}))
    assert str(error.value) == (f"manifest.json.{message}: fix the manifest and install "
                                "the bundle again")


def _ssd_tf_model() -> bytes:
    """A tiny graph giving SSD_TF's heads: a 'cat' on anchor 0 scored by the picture's
    brightness (a black picture has none)."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Mul", ["m", "gain"], ["g"]),
             helper.make_node("Add", ["g", "bias"], ["logits"]),
             helper.make_node("Add", ["codes_const", "zero"], ["codes"])]
    bias = np.full((1, 4, 3), -20.0, np.float32)
    bias[0, 0, 1] = -5.0
    gain = np.zeros((1, 4, 3), np.float32)
    gain[0, 0, 1] = 20.0
    inits = [numpy_helper.from_array(gain, "gain"), numpy_helper.from_array(bias, "bias"),
             numpy_helper.from_array(np.zeros((1, 4, 1, 4), np.float32), "codes_const"),
             numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
    graph = helper.make_graph(
        nodes, "ssd_tf", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                        [1, 3, tiny.SIZE, tiny.SIZE])],
        [helper.make_tensor_value_info("codes", TensorProto.FLOAT, [1, 4, 1, 4]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_tiny_ssd_tf_bundle_answers_over_http(tmp_path):
    from appliance import config
    from appliance.api import create_app
    from appliance.services import Services

    spec = tiny.manifest("x", "detect")["input"]
    tiny.write_bundle(tmp_path / "models", "tiny-objects", "detect", _ssd_tf_model(),
                      labels=SSD_LABELS, input={**spec, "dynamic_batch": False},
                      output=SSD_TF)
    settings = config.load(env={}, overrides={
        "models.dir": str(tmp_path / "models"), "state.dir": str(tmp_path / "state"),
        "models.intra_op_threads": 1})
    with Services.build(settings, admin="test-admin-token") as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        white = client.post("/v1/models/tiny-objects/infer",
                            data=image_bytes((255, 255, 255), (16, 8), "PNG"))
        black = client.post("/v1/models/tiny-objects/infer",
                            data=image_bytes((0, 0, 0), (16, 8), "PNG"))
    assert white.status_code == 200 and white.get_json()["detections"] == [
        {"label": "cat", "score": 1.0, "box": [0.0, 0.0, 8.0, 4.0]}]
    assert black.status_code == 200 and black.get_json()["detections"] == []
