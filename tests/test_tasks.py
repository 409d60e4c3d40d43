"""The task registry and each task's postprocessing, on hand-made outputs."""

import numpy as np
import pytest

from appliance import tasks
from appliance.bundle import read
from appliance.errors import BadRequest
from appliance.tasks import base, embed, image_to_image
from appliance.tasks.base import Context
from appliance.tasks.preprocess import Geometry

GEOMETRY = Geometry((200, 100), 1.0, 1.0)
CLASSIFY, EMBED, IMAGE = tasks.get("classify"), tasks.get("embed"), tasks.get("image-to-image")


def run(task, outputs, bundle, opts):
    return task.postprocess(outputs, Context(bundle, GEOMETRY, opts))


def test_registry_knows_the_tasks():
    assert set(tasks.NAMES) >= {"classify", "detect", "embed", "image-to-image", "segment",
                                "pose"}
    with pytest.raises(KeyError, match="unknown task 'paint': known tasks are"):
        tasks.get("paint")


@pytest.mark.parametrize("name", tasks.NAMES)
def test_every_task_declares_the_whole_interface(name):
    task = tasks.get(name)
    assert base.check(task) == []
    assert task.name == name and isinstance(task.options, tuple)


def test_a_task_that_leaves_a_part_out_is_caught():
    class NoDrawing(base.Task):
        name, summary, output, needs_labels, options = "x", "x", {}, False, ()
        answer, gate = {"x": {}}, {"m": 1.0}

        def postprocess(self, outputs, ctx):
            return base.Result()

        def measure(self, reference, candidate, spec, size):
            return {"m": 1.0}

    with pytest.raises(TypeError, match="draw"):
        NoDrawing()

    class NoGate(NoDrawing):
        gate = {}  # noqa: RUF012 (the interface under test is a class attribute)

        def draw(self, size, frame, body, output, backdrop):
            return frame

    assert base.check(NoGate()) == ["x: the gate has no metric"]
    del NoGate.gate, NoDrawing.gate
    assert base.check(NoGate()) == ["NoGate sets no gate"]


def test_the_converter_gate_and_openapi_are_derived_from_the_registry():
    from appliance.api import openapi
    from tools import convert_cli, gate

    parser = convert_cli.build_parser()
    task_action = next(a for a in parser._actions if a.dest == "task")
    assert tuple(task_action.choices) == tasks.NAMES
    params = {p["name"]: p for p in openapi.infer_params()}
    for task in tasks.all_tasks():
        assert gate.thresholds(task.name) == dict(task.gate)
        for option in task.options:
            assert f"{task.name}: {option.help}" in params[option.name]["description"]
            assert set(option.choices) <= set(params[option.name]["schema"].get("enum", []))
        assert set(task.answer) <= set(openapi.answer_fields())


def test_the_upload_page_draws_every_task():
    import re
    from pathlib import Path

    script = (Path(base.__file__).parents[1] / "web" / "app.js").read_text(encoding="utf-8")
    table = re.search(r"const RENDERERS = \{(.*?)\n\};", script, re.S)
    assert table, "app.js has no `const RENDERERS = { ... };` table"
    keys = set(re.findall(r'^\s*"?([a-z-]+)"?\s*:', table.group(1), re.M))
    assert set(tasks.NAMES) <= keys, f"no renderer in app.js for {set(tasks.NAMES) - keys}"


def test_option_parsing_refuses_what_it_must():
    option = base.Option("n", float, "a number", default=0.5, low=0.0, high=1.0)
    assert option.parse("0.25", None) == 0.25
    for text, message in (("nan", "finite"), ("inf", "finite"), ("2", "between 0 and 1"),
                          ("x", "must be a number")):
        with pytest.raises(BadRequest, match=message):
            option.parse(text, None)
    choice = base.Option("c", str, "a choice", default="a", choices=("a", "b"))
    with pytest.raises(BadRequest, match="option c must be one of a, b, got 'z'"):
        choice.parse("z", None)


def test_classify_top_k_sorted_with_labels(models_dir):
    bundle = read(models_dir / "tiny-classify")
    logits = np.array([[0.0, 3.0, 1.0, 2.0]], np.float32)
    result = run(CLASSIFY, [logits], bundle, {"top_k": 3})
    preds = result.body["predictions"]
    assert [p["label"] for p in preds] == ["green", "dark", "blue"]
    assert [p["index"] for p in preds] == [1, 3, 2]
    assert sum(p["score"] for p in preds) < 1.0
    assert preds[0]["score"] == pytest.approx(np.exp(3) / np.exp([0, 3, 1, 2]).sum(), 1e-5)


def test_classify_options(models_dir):
    bundle = read(models_dir / "tiny-classify")
    assert CLASSIFY.parse({}, bundle) == {"top_k": 3}
    assert CLASSIFY.parse({"top_k": "4"}, bundle) == {"top_k": 4}
    with pytest.raises(BadRequest, match="option top_k must be between 1 and 4, got 5"):
        CLASSIFY.parse({"top_k": "5"}, bundle)
    with pytest.raises(BadRequest, match="must be a whole number, got 'x'"):
        CLASSIFY.parse({"top_k": "x"}, bundle)
    with pytest.raises(BadRequest, match="unknown option 'topk' for this model: its options "
                                         "are top_k"):
        CLASSIFY.parse({"topk": "1"}, bundle)


def test_activations():
    logits = np.array([0.0, 0.0])
    assert base.activate(logits, "softmax").tolist() == [0.5, 0.5]
    assert base.activate(logits, "sigmoid").tolist() == [0.5, 0.5]
    assert base.activate(logits, "none").tolist() == [0.0, 0.0]


def test_embed_is_unit_length(models_dir):
    bundle = read(models_dir / "tiny-embed")
    result = run(EMBED, [np.array([[3.0, 4.0, 0.0]])], bundle, {})
    assert result.body == {"embedding": [0.6, 0.8, 0.0], "dim": 3}
    assert embed.normalize(np.zeros(3), "l2").tolist() == [0, 0, 0]
    with pytest.raises(BadRequest, match="its options are none"):
        EMBED.parse({"top_k": "1"}, bundle)


def test_image_to_image_keeps_the_aspect_ratio(models_dir):
    bundle = read(models_dir / "tiny-negative")
    out = np.zeros((1, 3, 8, 8), np.float32)
    out[0, 0] = 1.0  # red
    result = run(IMAGE, [out], bundle, {"format": "png"})
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
