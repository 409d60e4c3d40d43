import onnx
import pytest
from onnx import helper

from tests import models as tiny
from tools import modelcheck
from tools.errors import ConvertError


def test_a_good_model_loads(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(tiny.classify_model(), path)
    assert modelcheck.opset(modelcheck.load(path)) == 13


def test_external_data_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(tiny.conv_net(), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    with pytest.raises(ConvertError, match="keeps weights in external data"):
        modelcheck.load(path)


def test_custom_domain_is_refused(tmp_path):
    model = tiny.classify_model()
    model.graph.node.append(helper.make_node("Magic", ["logits"], ["x"], domain="evil.ops"))
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    with pytest.raises(ConvertError, match="custom operator domain 'evil.ops'"):
        modelcheck.load(path)


def test_missing_and_garbage(tmp_path):
    with pytest.raises(ConvertError, match="does not exist"):
        modelcheck.load(tmp_path / "absent.onnx")
    (tmp_path / "g.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(ConvertError, match="g.onnx is not an ONNX model"):
        modelcheck.load(tmp_path / "g.onnx")


def test_name_nodes_makes_names_unique():
    model = tiny.classify_model()
    for node in model.graph.node:
        node.name = ""
    names = [n.name for n in modelcheck.name_nodes(model).graph.node]
    assert names == ["GlobalAveragePool_0", "Flatten_1", "Gemm_2"]
