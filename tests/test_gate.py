import numpy as np
import pytest

from appliance.tasks import embed, image_to_image
from tools import gate
from tools.errors import ConvertError

SOFTMAX = {"activation": "softmax"}


def test_classify_agreement_overlap_and_confidence():
    sure = np.array([[10.0, 0, 0, 0, 0, 0]])
    tie = np.array([[1.0, 1.01, 0, 0, 0, 0]])
    flipped = np.array([[1.02, 1.0, 0, 0, 0, 0]])
    metrics = gate.judge("classify", [[sure], [tie]], [[sure], [flipped]], SOFTMAX,
                         gate.thresholds("classify")).metrics
    assert metrics["top1_agreement"] == 0.5
    assert metrics["top1_agreement_confident"] == 1.0  # the flip was between near-ties
    assert metrics["confident_images"] == 1
    assert metrics["top5_overlap"] == 1.0


def test_a_confident_flip_fails_the_gate():
    sure = np.array([[10.0, 0, 0]])
    wrong = np.array([[0, 10.0, 0]])
    verdict = gate.judge("classify", [[sure]] * 4, [[wrong]] + [[sure]] * 3, SOFTMAX,
                         gate.thresholds("classify"))
    assert not verdict.passed
    assert verdict.reason() == "top1_agreement_confident 0.75 is below 0.95"


def test_embed_cosine_and_image_psnr():
    a = np.array([[1.0, 0.0]])
    b = np.array([[1.0, 0.1]])
    metrics = gate.judge("embed", [[a]], [[b]], {}, gate.thresholds("embed")).metrics
    assert metrics["cosine_mean"] == pytest.approx(1 / np.sqrt(1.01))
    spec = {"range": [0.0, 1.0], "color": "gray", "layout": "NCHW", "invert": False}
    ref = np.full((1, 1, 4, 4), 0.5, np.float32)
    verdict = gate.judge("image-to-image", [[ref]], [[ref + 0.01]], spec,
                         gate.thresholds("image-to-image"))
    assert verdict.passed and 40 < verdict.metrics["psnr_db"] < 100


def test_helpers_and_overrides():
    assert image_to_image.psnr(np.zeros(4), np.zeros(4)) == 100.0
    assert embed.cosine(np.zeros(2), np.zeros(2)) == 1.0
    assert gate.thresholds("embed", {"cosine_mean": 0.5})["cosine_mean"] == 0.5
    with pytest.raises(ConvertError, match="--gate top1: unknown for task embed"):
        gate.thresholds("embed", {"top1": 1})


def test_detect_matches_boxes():
    from appliance.bundle import parse_manifest
    from tests import models as tiny
    from tests.test_detect import OUTPUT, _raw

    spec = parse_manifest(tiny.manifest("f", "detect", output=OUTPUT)).output
    same = gate.judge("detect", [_raw(0)], [_raw(0)], spec, gate.thresholds("detect"),
                      (128, 128))
    assert same.passed and same.metrics["box_f1"] == 1.0 and same.metrics["boxes"] == 1
    moved = gate.judge("detect", [_raw(0)], [_raw(600)], spec, gate.thresholds("detect"),
                       (128, 128))
    assert not moved.passed and moved.metrics["box_f1"] == 0.0
    missed = gate.judge("detect", [_raw(0)], [_raw(0, score_logit=-5)], spec,
                        gate.thresholds("detect"), (128, 128))
    assert missed.metrics["box_f1"] == 0.0


def _decoded(class_id: float) -> list[np.ndarray]:
    """One image's outputs of a detector that decodes its own boxes: one box of class
    `class_id` (as a float, as TensorFlow's graphs give it)."""
    return [np.array([[[0.1, 0.2, 0.6, 0.7]]], np.float32), np.array([[0.9]], np.float32),
            np.array([[class_id]], np.float32), np.array([1.0], np.float32)]


def test_detect_matches_boxes_of_the_same_class_only():
    from appliance.bundle import parse_manifest
    from tests import models as tiny

    output = {"box_format": "decoded", "box_order": "yxyx", "boxes_tensor": 0,
              "scores_tensor": 1, "classes_tensor": 2, "count_tensor": 3}
    spec = parse_manifest(tiny.manifest("o", "detect", output=output)).output
    limits = gate.thresholds("detect")
    same = gate.judge("detect", [_decoded(17)], [_decoded(16.9999)], spec, limits, (300, 300))
    assert same.passed and same.metrics["box_f1"] == 1.0
    relabelled = gate.judge("detect", [_decoded(17)], [_decoded(16)], spec, limits, (300, 300))
    assert not relabelled.passed and relabelled.metrics["box_f1"] == 0.0
