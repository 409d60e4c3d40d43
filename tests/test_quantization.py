from pathlib import Path

import onnx
import pytest
from onnx import helper

from tools import quantization
from tools.errors import ConvertError
from tools.quantization import Candidate


def test_candidates_per_target():
    assert [c.label for c in quantization.candidates("x86-vnni")] == ["U8S8 per-channel MinMax"]
    assert quantization.candidates("x86")[0].reduce_range
    assert [c.activation for c in quantization.candidates("arm64")] == ["uint8", "int8"]
    trt = quantization.candidates("tensorrt")[0]
    assert trt.symmetric and trt.tensorrt and trt.activation == "int8"
    assert quantization.resolve_target("auto") in ("x86-vnni", "x86", "arm64")
    with pytest.raises(ConvertError, match="unknown --target 'riscv'"):
        quantization.candidates("riscv")


def test_describe_names_every_setting():
    described = Candidate("uint8", "int8", method="Entropy", exclude=("a",)).describe(32)
    assert described == {"format": "QDQ", "activation_type": "uint8", "weight_type": "int8",
                         "per_channel": True, "reduce_range": False, "symmetric": False,
                         "calibration": {"method": "Entropy", "samples": 32},
                         "excluded_nodes": ["a"]}


def test_rank_by_damage_walks_through_unmeasured_tensors():
    graph = helper.make_graph([
        helper.make_node("Conv", ["x", "w"], ["h"], name="conv"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "c"], ["s"], name="add"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], name="pool"),
    ], "g", [], [])
    # h is not measured (fused into relu); pool loses 30 dB, relu 10, add nothing.
    ranked = quantization.rank_by_damage(graph, {"x": 60.0, "r": 50.0, "s": 50.0, "g": 20.0})
    assert ranked[0] == ("pool", "add")
    assert ranked[1] == ("relu", "conv")
    assert isinstance(graph, onnx.GraphProto)


def test_output_heads_walk_back_through_data_movement():
    graph = helper.make_graph([
        helper.make_node("Conv", ["x", "w"], ["a"], name="trunk"),
        helper.make_node("Conv", ["a", "w1"], ["b1"], name="box_conv"),
        helper.make_node("Conv", ["a", "w2"], ["s1"], name="score_conv"),
        helper.make_node("Reshape", ["b1", "shape"], ["boxes"], name="box_reshape"),
        helper.make_node("Transpose", ["s1"], ["s2"], name="score_t"),
        helper.make_node("Reshape", ["s2", "shape"], ["scores"], name="score_reshape"),
    ], "g", [], [helper.make_tensor_value_info("boxes", 1, None),
                 helper.make_tensor_value_info("scores", 1, None)])
    assert set(quantization.output_heads(graph)) == {"box_reshape", "box_conv",
                                                     "score_reshape", "score_t", "score_conv"}


def test_preprocess_leaves_nothing_where_it_was_started(tmp_path, monkeypatch):
    """onnxruntime's symbolic shape inference writes sym_shape_infer_temp.onnx into the
    working folder when it fails: it must land beside the destination, never in a checkout."""
    started, inside, out = (tmp_path / "checkout", tmp_path / "work" / "in",
                            tmp_path / "work" / "out")
    for folder in (started, inside, out):
        folder.mkdir(parents=True)
    monkeypatch.chdir(started)
    (inside / "model.onnx").write_bytes(b"model")

    def leaves_a_file(src, dst, skip_symbolic_shape=False):
        with open("sym_shape_infer_temp.onnx", "wb") as stray:
            stray.write(b"temp")
        with open(src, "rb") as model, open(dst, "wb") as done:
            done.write(model.read() + b" done")

    monkeypatch.setattr(quantization, "quant_pre_process", leaves_a_file)
    # Paths relative to where it was started, as the converter's work folder is given.
    work = Path("..") / "work"
    assert quantization.preprocess(work / "in" / "model.onnx",
                                   work / "out" / "pre.onnx") == "quant_pre_process"
    assert list(started.iterdir()) == []
    assert (out / "pre.onnx").read_bytes() == b"model done"
