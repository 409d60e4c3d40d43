import numpy as np
import pytest
from PIL import Image

from appliance.bundle import InputSpec
from appliance.tasks import preprocess


def spec(**changes) -> InputSpec:
    base = dict(name="input", layout="NCHW", size=(4, 6), resize="stretch", color="RGB",
                scale=1.0, mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0),
                dtype="float32", dynamic_batch=False)
    base.update(changes)
    return InputSpec(**base)


def test_normalize_matches_the_formula():
    image = Image.new("RGB", (6, 4), (255, 127, 0))
    tensor, geometry = preprocess.prepare(image, spec())
    assert tensor.shape == (1, 3, 4, 6)
    assert tensor.dtype == np.float32
    assert np.allclose(tensor[0, :, 0, 0], [(255 - 127) / 128, 0, -127 / 128])
    assert geometry.source_size == (6, 4)


def test_bgr_nhwc_and_scale():
    image = Image.new("RGB", (6, 4), (10, 20, 30))
    tensor, _ = preprocess.prepare(image, spec(color="BGR", layout="NHWC", scale=0.5,
                                               mean=(0, 0, 0), std=(1, 1, 1)))
    assert tensor.shape == (1, 4, 6, 3)
    assert np.allclose(tensor[0, 0, 0], [15, 10, 5])


@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_planar_nchw_equals_the_formula_per_channel(color):
    pixels = np.random.default_rng(3).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    chosen = spec(color=color, scale=1 / 255, mean=(0.485, 0.456, 0.406),
                  std=(0.229, 0.224, 0.225))
    tensor, _ = preprocess.prepare(Image.fromarray(pixels), chosen)
    ordered = pixels[..., ::-1] if color == "BGR" else pixels
    expected = (ordered / 255.0 - np.array(chosen.mean)) / np.array(chosen.std)
    assert tensor.flags.c_contiguous and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0], expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)


def test_uint8_input_is_raw_pixels():
    tensor, _ = preprocess.prepare(Image.new("RGB", (6, 4), (1, 2, 3)), spec(dtype="uint8"))
    assert tensor.dtype == np.uint8
    assert tensor[0, :, 0, 0].tolist() == [1, 2, 3]


def test_center_crop_keeps_the_middle():
    pixels = np.zeros((10, 30, 3), np.uint8)
    pixels[:, 10:20] = 255  # white middle third
    image = Image.fromarray(pixels)
    resized, geometry = preprocess.resize(image, spec(size=(10, 10),
                                                      resize="shorter-side-center-crop"))
    assert resized.size == (10, 10)
    assert np.asarray(resized).min() > 200
    assert geometry.scale_x == 1.0 and geometry.pad_x == -10.0


def test_letterbox_pads_and_records_geometry():
    image = Image.new("RGB", (20, 10), (255, 255, 255))
    resized, geometry = preprocess.resize(image, spec(size=(20, 20), resize="letterbox"))
    pixels = np.asarray(resized)
    assert resized.size == (20, 20)
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[10, 10].tolist() == [255, 255, 255]
    assert (geometry.scale_x, geometry.pad_y) == (1.0, 5)


@pytest.mark.parametrize("resize", ["stretch", "shorter-side-center-crop", "letterbox"])
def test_every_mode_gives_the_input_size(resize):
    tensor, _ = preprocess.prepare(Image.new("RGB", (37, 91)), spec(size=(7, 5), resize=resize))
    assert tensor.shape == (1, 3, 7, 5)
    assert tensor.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("source", [(384, 191), (191, 384), (1, 1), (223, 225), (3, 1000)])
def test_center_crop_on_small_and_odd_images(source):
    tensor, _ = preprocess.prepare(Image.new("RGB", source),
                                   spec(size=(224, 224), resize="shorter-side-center-crop"))
    assert tensor.shape == (1, 3, 224, 224)
