"""segment: the mask mapped back onto the picture, the cut-out, the gate's mask IoU, and the
answer over HTTP from a real tiny model (its mask is the picture's red channel)."""

import io

import numpy as np
import pytest
from PIL import Image

from appliance import tasks
from appliance.bundle import read
from appliance.errors import BundleError
from appliance.tasks import segment
from appliance.tasks.base import Context
from appliance.tasks.preprocess import Geometry
from tests import models as tiny

SEGMENT = tasks.get("segment")
SPEC = {"layout": "NHWC", "channel": 0, "activation": "none", "max_side": 1024, "tensor": ""}


@pytest.fixture
def cutout_dir(models_dir):
    spec = tiny.manifest("x", "segment")["input"]
    tiny.write_bundle(models_dir, "tiny-cutout", "segment",
                      input={**spec, "resize": "letterbox", "dynamic_batch": False},
                      model=tiny.segment_model())
    return models_dir


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _half_red(size=(40, 20)) -> Image.Image:
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return image


def test_letterboxed_mask_maps_back_onto_the_picture():
    mask = np.zeros((8, 8), np.float32)
    mask[2:6, :4] = 1.0  # the left half of the picture's band (rows 2-6 hold the picture)
    geometry = Geometry((40, 20), 0.2, 0.2, pad_x=0, pad_y=2)
    alpha = segment.to_source(mask, geometry, (40, 20))
    assert alpha.shape == (20, 40)
    assert alpha[10, 5] == 255 and alpha[10, 35] == 0
    assert segment.bounding_box(alpha, (40, 20)) == [0.0, 0.0, 20.0, 20.0]


def test_an_extreme_aspect_ratio_gives_a_mask_of_its_own_shape():
    geometry = Geometry((1, 4000), 8 / 4000, 8 / 4000, pad_x=3.998, pad_y=0)
    alpha = segment.to_source(np.ones((8, 8), np.float32), geometry, (1, 1024))
    assert alpha.shape == (1024, 1)
    empty = segment.to_source(np.ones((8, 8), np.float32), Geometry((1, 4000), 0, 0, 9, 9),
                              (1, 1024))
    assert empty.max() == 0


def test_postprocess_cuts_out_the_foreground_with_soft_alpha(cutout_dir):
    bundle = read(cutout_dir / "tiny-cutout")
    picture = _half_red()
    tensor, geometry = SEGMENT.prepare(picture, bundle.manifest.input)
    mask = tensor[:, :1]  # what the tiny model answers: the red channel
    result = SEGMENT.postprocess([mask], Context(bundle, geometry,
                                                 {"output": "cutout", "format": "png"},
                                                 image=picture))
    assert result.image.mode == "RGBA" and result.image.size == (40, 20)
    assert result.image.getpixel((5, 10)) == (255, 0, 0, 255)
    assert result.image.getpixel((35, 10))[3] == 0
    assert result.body["coverage"] == pytest.approx(0.5, abs=0.08)
    mask_only = SEGMENT.postprocess([mask], Context(bundle, geometry,
                                                    {"output": "mask", "format": "png"},
                                                    image=picture))
    assert mask_only.image.mode == "L"


def test_activation_and_channel_are_read_from_the_manifest():
    logits = np.zeros((1, 2, 2, 2), np.float32)
    logits[..., 1] = 5.0
    soft = segment.probabilities(logits, {**SPEC, "channel": 1, "activation": "softmax"})
    assert soft.min() > 0.99
    with pytest.raises(ValueError, match="channel 2: the mask has 2 channels"):
        segment.probabilities(logits, {**SPEC, "channel": 2})


def test_a_negative_channel_is_refused_at_load(tmp_path):
    with pytest.raises(BundleError, match=r"output.channel: must be 0 or more"):
        tiny.write_bundle(tmp_path, "bad", "segment",
                          output={"layout": "NCHW", "channel": -1})


def test_gate_mask_iou():
    a = np.zeros((1, 4, 4, 1), np.float32)
    a[0, :2] = 1.0
    b = np.zeros_like(a)
    b[0, :1] = 1.0
    metrics = SEGMENT.measure([[a]], [[b]], SPEC, (4, 4))
    assert metrics["mask_iou"] == pytest.approx(0.5)
    assert SEGMENT.measure([[a]], [[a]], SPEC, (4, 4))["mask_iou_min"] == 1.0


def test_http_answers_a_png_cutout_json_and_options(cutout_dir, client):
    data = _png(_half_red())
    response = client.post("/v1/models/tiny-cutout/infer", data=data,
                           content_type="image/png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    cut = Image.open(io.BytesIO(response.data))
    assert cut.mode == "RGBA" and cut.size == (40, 20)
    assert cut.getpixel((5, 10))[3] == 255 and cut.getpixel((35, 10))[3] == 0
    body = client.post("/v1/models/tiny-cutout/infer?format=json", data=data,
                       content_type="image/png").get_json()
    assert body["width"] == 40 and body["mime"] == "image/png" and body["box"][0] == 0.0
    bad = client.post("/v1/models/tiny-cutout/infer?output=outline", data=data,
                      content_type="image/png")
    assert bad.status_code == 400
    assert "option output must be one of cutout, mask" in bad.get_json()["error"]["message"]
    bad = client.post("/v1/models/tiny-cutout/infer?format=jpeg", data=data,
                      content_type="image/png")
    assert bad.status_code == 400 and "png, json" in bad.get_json()["error"]["message"]
