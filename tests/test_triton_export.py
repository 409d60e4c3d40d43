import onnx
import pytest

from tests import models as tiny
from tools import triton_export as triton
from tools.errors import ConvertError


def test_config_for_a_batching_model(tmp_path):
    bundle = tiny.write_bundle(tmp_path / "models", "tiny-classify")
    folder = triton.export(bundle, tmp_path / "repo")
    text = (folder / "config.pbtxt").read_text()
    assert text.splitlines()[:3] == ['name: "tiny-classify"', 'backend: "onnxruntime"',
                                     "max_batch_size: 8"]
    assert '{ name: "input" data_type: TYPE_FP32 dims: [ 3, 8, 8 ] }' in text
    assert '{ name: "logits" data_type: TYPE_FP32 dims: [ 4 ] }' in text
    assert "dynamic_batching" in text
    assert (folder / "1" / "model.onnx").read_bytes() == bundle.model_path.read_bytes()
    assert (folder / "labels.txt").is_file()


def test_config_without_a_batch_dimension():
    text = triton.config_text("m", tiny.classify_model(batch=1), batching=False, max_batch=8)
    assert "max_batch_size: 0" in text and "dims: [ 1, 3, 8, 8 ]" in text
    assert "dynamic_batching" not in text
    assert isinstance(tiny.classify_model(), onnx.ModelProto)


def test_a_bundle_of_several_graphs_is_left_out_saying_why(tmp_path):
    bundle = tiny.ocr_bundle(tmp_path / "models", "tiny-text")
    reason = triton.unsupported(bundle)
    assert reason == ("tiny-text is left out of the Triton repository: task ocr runs 3 graphs "
                      "(det.onnx, cls.onnx, rec.onnx) with steps between them that Triton's "
                      "onnxruntime backend cannot run; serve it from a box")
    with pytest.raises(ConvertError) as refused:
        triton.export(bundle, tmp_path / "repo")
    assert str(refused.value) == reason
    assert not (tmp_path / "repo").exists()
    assert triton.unsupported(tiny.write_bundle(tmp_path / "models", "tiny-classify")) is None
