"""The task registry and each task's postprocessing, on hand-made outputs."""

import numpy as np
import pytest

from appliance import tasks
from appliance.bundle import read
from appliance.errors import BadRequest
from appliance.tasks import classify, embed, image_to_image
from appliance.tasks.preprocess import Geometry

GEOMETRY = Geometry((200, 100), 1.0, 1.0)


def test_registry_knows_the_tasks():
    assert set(tasks.NAMES) == {"classify", "detect", "embed", "image-to-image"}
    with pytest.raises(KeyError, match="unknown task 'segment': known tasks are"):
        tasks.get("segment")


def test_classify_top_k_sorted_with_labels(models_dir):
    bundle = read(models_dir / "tiny-classify")
    logits = np.array([[0.0, 3.0, 1.0, 2.0]], np.float32)
    result = classify.postprocess([logits], bundle, GEOMETRY, {"top_k": 3})
    preds = result.body["predictions"]
    assert [p["label"] for p in preds] == ["green", "dark", "blue"]
    assert [p["index"] for p in preds] == [1, 3, 2]
    assert sum(p["score"] for p in preds) < 1.0
    assert preds[0]["score"] == pytest.approx(np.exp(3) / np.exp([0, 3, 1, 2]).sum(), 1e-5)


def test_classify_options(models_dir):
    bundle = read(models_dir / "tiny-classify")
    assert classify.options({}, bundle) == {"top_k": 3}
    assert classify.options({"top_k": "4"}, bundle) == {"top_k": 4}
    with pytest.raises(BadRequest, match="option top_k must be between 1 and 4, got 5"):
        classify.options({"top_k": "5"}, bundle)
    with pytest.raises(BadRequest, match="must be a whole number, got 'x'"):
        classify.options({"top_k": "x"}, bundle)
    with pytest.raises(BadRequest, match="unknown option 'topk' for this model: its options "
                                         "are top_k"):
        classify.options({"topk": "1"}, bundle)


def test_activations():
    logits = np.array([0.0, 0.0])
    assert classify.activate(logits, "softmax").tolist() == [0.5, 0.5]
    assert classify.activate(logits, "sigmoid").tolist() == [0.5, 0.5]
    assert classify.activate(logits, "none").tolist() == [0.0, 0.0]


def test_embed_is_unit_length(models_dir):
    bundle = read(models_dir / "tiny-embed")
    result = embed.postprocess([np.array([[3.0, 4.0, 0.0]])], bundle, GEOMETRY, {})
    assert result.body == {"embedding": [0.6, 0.8, 0.0], "dim": 3}
    assert embed.normalize(np.zeros(3), "l2").tolist() == [0, 0, 0]
    with pytest.raises(BadRequest, match="its options are none"):
        embed.options({"top_k": "1"}, bundle)


def test_image_to_image_keeps_the_aspect_ratio(models_dir):
    bundle = read(models_dir / "tiny-negative")
    out = np.zeros((1, 3, 8, 8), np.float32)
    out[0, 0] = 1.0  # red
    result = image_to_image.postprocess([out], bundle, GEOMETRY, {"format": "png"})
    assert result.image.size == (64, 32)  # max_side 64, input 200x100
    assert result.image.getpixel((10, 10)) == (255, 0, 0)


def test_to_pixels_gray_inverted_and_bgr():
    spec = {"range": [0.0, 1.0], "color": "gray", "layout": "NCHW", "invert": True}
    pixels = image_to_image.to_pixels(np.ones((1, 1, 2, 2), np.float32), spec)
    assert pixels.shape == (2, 2) and pixels.max() == 0
    spec = {"range": [-1.0, 1.0], "color": "BGR", "layout": "NHWC", "invert": False}
    pixels = image_to_image.to_pixels(np.array([[[[1.0, -1.0, -1.0]]]], np.float32), spec)
    assert pixels[0, 0].tolist() == [0, 0, 255]


def test_output_size_never_upscales():
    assert image_to_image.output_size((100, 50), 1024) == (100, 50)
    assert image_to_image.output_size((4000, 3000), 1024) == (1024, 768)
    assert image_to_image.output_size((3000, 4000), 1000) == (750, 1000)
