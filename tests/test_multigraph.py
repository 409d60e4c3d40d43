"""The multi-graph converter on a tiny real OCR-like trio run by the real `ocr` task: each
graph's INT8 judged by the whole reading, a candidate that spoils it kept in float with the
reason in the report, one that keeps it shipped, a missing graph file refused."""

import itertools
import json
import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

from appliance import bundle as bundles
from tools import multigraph
from tools.default_models import Built
from tools.errors import ConvertError
from tools.gate import Verdict
from tools.multigraph import Try, choose, uniform
from tools.quantization import Candidate

pytestmark = pytest.mark.slow
LABELS = ["a", "b"]  # the recogniser's classes: blank, a, b, space


def _model(nodes, inputs, outputs, inits, opset=13) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "tiny-ocr", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _x(*dims):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))


def det_model() -> onnx.ModelProto:
    """Dark pixels are text: sigmoid(-2 (b + g + r)) over the [-1, 1] picture."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["logit"], name="det_conv"),
             helper.make_node("Sigmoid", ["logit"], ["prob"], name="det_sigmoid")]
    inits = [numpy_helper.from_array(np.full((1, 3, 1, 1), -2.0, np.float32), "w"),
             numpy_helper.from_array(np.zeros(1, np.float32), "b")]
    out = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, "h", "w"])
    return _model(nodes, [_x(1, 3, "h", "w")], [out], inits, opset=11)  # as PaddleOCR's


def cls_model() -> onnx.ModelProto:
    """Every line is upright (0° scores 4, 180° scores 0)."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["pooled"], name="cls_pool"),
             helper.make_node("Flatten", ["pooled"], ["flat"], name="cls_flat"),
             helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], transB=1, name="cls_fc"),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="cls_softmax")]
    inits = [numpy_helper.from_array(np.zeros((2, 3), np.float32), "w"),
             numpy_helper.from_array(np.array([4.0, 0.0], np.float32), "b")]
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 2])
    return _model(nodes, [_x("n", 3, 48, 192)], [out], inits)


def rec_model(never: float = -100.0) -> onnx.ModelProto:
    """Reads each dark 8 px window as 'a' and light ones as blank: logits blank 4m, a -4m
    for the mean m of the window's middle rows; 'b' and space score `never`. At -5000 that
    one constant stretches the logits' per-tensor INT8 range until 4m rounds to 0 and
    nothing is read."""
    mean = np.zeros((1, 3, 48, 8), np.float32)
    mean[:, :, 16:32] = 1 / (3 * 16 * 8)  # the middle third: the detector's boxes have margins
    nodes = [helper.make_node("Conv", ["x", "mean"], ["m"], strides=[48, 8], name="rec_mean"),
             helper.make_node("Conv", ["m", "w", "b"], ["logits"], name="rec_logits"),
             helper.make_node("Squeeze", ["logits", "axis"], ["steps"], name="rec_squeeze"),
             helper.make_node("Transpose", ["steps"], ["seq"], perm=[0, 2, 1], name="rec_t"),
             helper.make_node("Softmax", ["seq"], ["probs"], axis=2, name="rec_softmax")]
    inits = [numpy_helper.from_array(mean, "mean"),
             numpy_helper.from_array(np.array([4, -4, 0, 0], np.float32).reshape(4, 1, 1, 1),
                                     "w"),
             numpy_helper.from_array(np.array([0, 0, never, never], np.float32), "b"),
             numpy_helper.from_array(np.array([2], np.int64), "axis")]
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", "t", 4])
    return _model(nodes, [_x("n", 3, 48, "w")], [out], inits)


def bars(count: int, seed: int) -> list[Image.Image]:
    """White pictures with one to three black bars: lines of 'text' the trio reads as 'a'."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        picture = Image.new("RGB", (320, 240), (250, 250, 250))
        draw = ImageDraw.Draw(picture)
        for row in range(rng.randint(1, 3)):
            x, width = rng.randint(10, 60), rng.randint(90, 220)
            top = 20 + row * 75 + rng.randint(0, 20)
            draw.rectangle((x, top, x + width, top + rng.randint(18, 30)), fill=(10, 10, 10))
        out.append(picture)
    return out


MANIFEST = {
    "format": bundles.FORMAT, "name": "tiny-text", "version": "1.0.0", "task": "ocr",
    "attribution": {"author": "Test Author", "source": "tests", "license": "CC0-1.0"},
    "model": {"file": "model.onnx", "sha256": "0" * 64, "precision": "fp32"},
    "input": {"name": "x", "layout": "NCHW", "size": [64, 64], "resize": "stretch",
              "color": "BGR", "mean": [127.5] * 3, "std": [127.5] * 3},
    "output": {"labels": "labels.txt"},
}


def _built(tmp_path: Path, rec: onnx.ModelProto) -> Built:
    paths = {}
    for name, model in (("det", det_model()), ("cls", cls_model()), ("rec", rec)):
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(model, paths[name])
    return Built(paths["det"], MANIFEST, LABELS, {"LICENSE": "CC0\n"},
                 {"cls": paths["cls"], "rec": paths["rec"]})


def _convert(tmp_path, rec, faster_by=multigraph.FASTER_BY, max_fallbacks=0):
    lines: list[str] = []
    result = multigraph.build(tmp_path / "models" / "tiny-text", _built(tmp_path, rec),
                              say=lines.append, pictures=(bars(6, 0), bars(5, 1)),
                              faster_by=faster_by, max_fallbacks=max_fallbacks)
    return result, json.loads((result.path / "report.json").read_text()), lines


def three_bars() -> Image.Image:
    picture = Image.new("RGB", (320, 240), (250, 250, 250))
    draw = ImageDraw.Draw(picture)
    for top in (30, 100, 170):
        draw.rectangle((40, top, 260, top + 24), fill=(10, 10, 10))
    return picture


def test_the_float_trio_reads_each_bar_as_a_line():
    assert _reads(three_bars(), rec_model()) == ["a", "a", "a"]
    assert _reads(three_bars(), rec_model(never=-5000.0)) == ["a", "a", "a"]


def _reads(picture, rec) -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        built = _built(Path(folder), rec)
        probe = bundles.Bundle(Path(folder), bundles.parse_manifest(
            {**MANIFEST, "graphs": {n: {"file": f"{n}.onnx", "sha256": "0" * 64,
                                        "precision": "fp32"} for n in ("cls", "rec")}}),
            LABELS)
        pipeline = multigraph.Pipeline(probe, {"model": built.source, **built.graphs})
        return [line["text"] for line in pipeline.answer(picture).body["lines"]]


def test_a_shared_memo_runs_each_graph_once_per_input_and_answers_the_same(tmp_path):
    built = _built(tmp_path, rec_model())
    probe = bundles.Bundle(tmp_path, bundles.parse_manifest(
        {**MANIFEST, "graphs": {n: {"file": f"{n}.onnx", "sha256": "0" * 64,
                                    "precision": "fp32"} for n in ("cls", "rec")}}), LABELS)
    paths = {"model": built.source, **built.graphs}
    memo: multigraph.Memo = {}
    first = multigraph.Pipeline(probe, paths, memo).answer(three_bars()).body
    runs = len(memo)
    assert {key[0] for key in memo} == {str(path) for path in paths.values()}  # each ran
    again_pipeline = multigraph.Pipeline(probe, paths, memo)
    again = again_pipeline.answer(three_bars()).body
    assert len(memo) == runs and again == first  # nothing ran twice, the same answer
    assert again == multigraph.Pipeline(probe, paths).answer(three_bars()).body  # no memo
    # What a caller does to the outputs it gets never reaches the memo.
    key = next(k for k in memo if k[0] == str(built.source))
    tensor, _ = again_pipeline.task.prepare(three_bars(), probe.manifest.input)
    outputs = again_pipeline._run("model", tensor, None)
    kept = [o.copy() for o in memo[key]]
    for output in outputs:
        output[...] = 0
    assert all(np.array_equal(a, b) for a, b in zip(memo[key], kept, strict=True))


def test_a_candidate_that_spoils_the_reading_stays_float_with_its_reason(tmp_path):
    result, report, lines = _convert(tmp_path, rec_model(never=-5000.0), faster_by=-10.0)
    rec = report["graphs"]["rec"]
    assert result.manifest.graphs["rec"]["precision"] == "fp32"
    assert [t["label"].split()[2] for t in rec["trials"]] == ["MinMax", "Percentile",
                                                               "Entropy"]
    assert not any(t["passed"] for t in rec["trials"])
    assert all("char_accuracy" in t["note"] and "is below 0.98" in t["note"]
               for t in rec["trials"])
    assert rec["decision"].startswith("Float ships: no INT8 candidate kept the task's answers")
    text = (result.path / "REPORT.md").read_text()
    assert "## rec: what was tried" in text and "is below 0.98" in text
    assert bundles.file_sha256(result.graph_path("rec")) == \
        bundles.file_sha256(tmp_path / "rec.onnx")  # the float source, unchanged
    assert any(line.startswith("      rec U8S8") and ": fail" in line for line in lines)


def test_a_graph_left_unsearched_ships_float_with_the_plans_reason(tmp_path):
    # rec_model() passes the gate (test below): left unsearched, it is never tried at all.
    lines: list[str] = []
    result = multigraph.build(tmp_path / "models" / "tiny-text", _built(tmp_path, rec_model()),
                              say=lines.append, pictures=(bars(6, 0), bars(5, 1)),
                              faster_by=-10.0, max_fallbacks=0, methods=("MinMax",),
                              unsearched={"rec": "measured to fail here"})
    report = json.loads((result.path / "report.json").read_text())
    rec, cls = report["graphs"]["rec"], report["graphs"]["cls"]
    assert rec["trials"] == [] and result.manifest.graphs["rec"]["precision"] == "fp32"
    assert rec["decision"] == "Float ships without a search: measured to fail here."
    assert rec["float"]["p50_ms"] > 0  # still timed, for the report
    assert [t["label"].split()[2] for t in cls["trials"]] == ["MinMax"]  # methods followed
    assert "      rec: not searched (tools/plans.py)" in lines


def test_fallback_rounds_keep_more_nodes_float_and_are_reported(tmp_path):
    result, report, _ = _convert(tmp_path, rec_model(never=-5000.0), faster_by=-10.0,
                                 max_fallbacks=3)
    trials = report["graphs"]["rec"]["trials"]
    kept = [t["settings"]["excluded_nodes"] for t in trials[3:]]
    assert kept[0] == ["rec_softmax"]  # the output head alone first
    assert len(kept) == 3 and all(len(a) < len(b) for a, b in itertools.pairwise(kept))
    # The crushed logits feed every later node: no round rescues this one, float ships.
    assert not any(t["passed"] for t in trials)
    assert result.manifest.graphs["rec"]["precision"] == "fp32"


def test_a_candidate_that_keeps_the_reading_ships(tmp_path):
    # faster_by=-10: any passing candidate is fast enough here, so the gate alone decides
    # (the speed rule is tested on its own below: tiny graphs time at noise level).
    result, report, _ = _convert(tmp_path, rec_model(), faster_by=-10.0)
    rec = report["graphs"]["rec"]
    assert rec["trials"][0]["passed"] and rec["trials"][0]["metrics"]["char_accuracy"] == 1.0
    assert result.manifest.graphs["rec"]["precision"] == "int8"
    assert result.manifest.model["precision"] == "int8"  # opset 11: upgraded for per-channel
    assert result.manifest.graphs["rec"]["quantization"]["calibration"]["samples"] >= 6
    assert report["combined"][-1]["passed"] and "rec" in report["combined"][-1]["int8"]
    assert rec["sizes"]["shipped"] == result.graph_path("rec").stat().st_size
    # The bundle loads as the box loads it, every graph checked.
    again = bundles.read(result.path)
    assert set(again.manifest.graphs) == {"cls", "rec"} and again.labels == LABELS
    assert [line["text"] for line in _answer(again, three_bars())] == ["a", "a", "a"]


def _answer(bundle, picture):
    pipeline = multigraph.Pipeline(bundle, {"model": bundle.model_path,
                                            **{n: bundle.graph_path(n)
                                               for n in bundle.manifest.graphs}})
    return pipeline.answer(picture).body["lines"]


def test_a_missing_graph_file_is_one_clear_error_and_nothing_is_written(tmp_path):
    built = _built(tmp_path, rec_model())
    (tmp_path / "rec.onnx").unlink()
    with pytest.raises(ConvertError) as error:
        multigraph.build(tmp_path / "models" / "tiny-text", built, say=lambda _: None,
                         pictures=(bars(2, 0), bars(2, 1)))
    assert str(error.value).startswith(f"graph rec: its file {tmp_path / 'rec.onnx'} is "
                                       "missing")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_a_graph_the_task_does_not_run_is_refused(tmp_path):
    built = _built(tmp_path, rec_model())
    built = built._replace(graphs={"rec": built.graphs["rec"], "extra": built.graphs["cls"]})
    with pytest.raises(ConvertError, match="missing: cls; unknown: extra"):
        multigraph.build(tmp_path / "models" / "tiny-text", built, say=lambda _: None)


def test_float_only_writes_every_graph_as_given(tmp_path):
    result = multigraph.build(tmp_path / "models" / "tiny-text", _built(tmp_path, rec_model()),
                              quantize=False, say=lambda _: None)
    assert {g["precision"] for g in result.manifest.graphs.values()} == {"fp32"}
    assert result.manifest.model["precision"] == "fp32"
    assert (result.path / "cls.onnx").read_bytes() == (tmp_path / "cls.onnx").read_bytes()


def _try(p50: float, passed: bool = True) -> Try:
    verdict = Verdict(passed, {"char_accuracy": 1.0 if passed else 0.5},
                      {"char_accuracy": 0.98}, [] if passed else ["char_accuracy 0.5 is "
                                                                  "below 0.98"])
    return Try(Candidate("uint8", "int8"), verdict, Path("x.onnx"), p50_ms=p50)


def test_int8_ships_only_when_it_passes_and_is_5_percent_faster():
    chosen, decision = choose([_try(9.0), _try(4.0)], 10.0)
    assert chosen.p50_ms == 4.0 and decision.startswith("INT8 ships: 2.50x faster")
    chosen, decision = choose([_try(9.6)], 10.0)
    assert chosen is None and "ran 9.60 ms p50 against float's 10.00 ms" in decision
    chosen, decision = choose([_try(2.0, passed=False)], 10.0)
    assert chosen is None and "char_accuracy 0.5 is below 0.98" in decision


def test_calibration_inputs_are_split_and_cut_to_one_shape():
    tensors = [np.ones((2, 3, 48, 400), np.float32), np.zeros((1, 3, 48, 320), np.float32)]
    out = uniform(tensors)
    assert [t.shape for t in out] == [(1, 3, 48, 320)] * 3
    assert out[0].sum() == 3 * 48 * 320 and out[2].sum() == 0
