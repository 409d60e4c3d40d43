import numpy as np
import pytest

from appliance import pipeline
from appliance.errors import BadRequest, UnsupportedMedia
from tests.conftest import image_bytes


def test_infer_times_each_stage(services):
    runner = services.registry.get("tiny-classify")
    answer = pipeline.infer(runner, image_bytes((0, 0, 255)), {}, 10_000_000)
    body = answer.body()
    assert body["model"] == "tiny-classify" and body["version"] == "0.0.1"
    assert body["predictions"][0]["label"] == "blue"
    assert list(body["timing_ms"]) == ["decode", "preprocess", "inference", "postprocess"]
    assert all(v >= 0 for v in body["timing_ms"].values())


def test_options_are_checked_before_decoding(services):
    runner = services.registry.get("tiny-classify")
    # A bad option and a picture that is not one: the option is what is answered, so a
    # picture is never decoded for a request that is refused anyway.
    with pytest.raises(BadRequest, match="top_k"):
        pipeline.infer(runner, b"junk", {"top_k": "two"}, 10_000_000)
    with pytest.raises(UnsupportedMedia):  # good options: the picture is judged
        pipeline.infer(runner, b"junk", {"top_k": "2"}, 10_000_000)


def test_negative_model_returns_the_negative(services):
    runner = services.registry.get("tiny-negative")
    answer = pipeline.infer(runner, image_bytes((255, 0, 0), fmt="PNG"), {}, 10_000_000)
    pixels = np.asarray(answer.result.image)
    assert answer.result.image.size == (64, 48)
    assert pixels[5, 5].tolist() == [0, 255, 255]


def test_row29_infer_decodes_within_the_services_budget(services):
    from appliance.decodebudget import MB, DecodeBudget
    from appliance.errors import PayloadTooLarge

    assert (services.decodes.total, services.decodes.per_decode) == (512 * MB, 256 * MB)
    runner = services.registry.get("tiny-classify")
    big = image_bytes((0, 0, 255), size=(4000, 3000), fmt="PNG")
    answer = pipeline.infer(runner, big, {}, 50_000_000, budget=services.decodes)
    assert answer.body()["predictions"][0]["label"] == "blue"
    assert services.decodes.in_flight == 0
    with pytest.raises(PayloadTooLarge, match="this box decodes up to 1 MB per image"):
        pipeline.infer(runner, big, {}, 50_000_000, budget=DecodeBudget(MB, MB))
