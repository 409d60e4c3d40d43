import onnx
import pytest

from tools.errors import ConvertError
from tools.ingest import ingest

pytest.importorskip("torch", reason="needs the tools extra: pip install '.[tools]'")


def test_torch_factory_exports_with_a_dynamic_batch(tmp_path):
    path = ingest("tests.torchnets:tiny_classifier", tmp_path, (1, 3, 16, 16), "input", True)
    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].name == "input"
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 16, 16]


def test_torch_factory_needs_a_shape_and_an_importable_name(tmp_path):
    with pytest.raises(ConvertError, match="needs --input-shape"):
        ingest("tests.torchnets:tiny_classifier", tmp_path, None, "input", True)
    with pytest.raises(ConvertError, match="cannot import tests.torchnets:nope"):
        ingest("tests.torchnets:nope", tmp_path, (1, 3, 8, 8), "input", True)


def test_onnx_file_keeps_its_name(tmp_path):
    (tmp_path / "in").mkdir()
    source = tmp_path / "mine.onnx"
    source.write_bytes(b"x")
    assert ingest(str(source), tmp_path / "in", None, "input", True).name == "mine.onnx"
    with pytest.raises(ConvertError, match="does not exist"):
        ingest(str(tmp_path / "absent.onnx"), tmp_path / "in", None, "input", True)
