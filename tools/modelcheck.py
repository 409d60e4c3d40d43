"""Checks on an input ONNX model before conversion: the same ones the box applies to
uploads (one file, no external data, known op domains, a loadable graph, one image input)."""

from __future__ import annotations

from pathlib import Path

import onnx

from tools.errors import ConvertError

ALLOWED_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
MAX_NODES = 100_000


def load(path: str | Path) -> onnx.ModelProto:
    """Load and check an ONNX file. Raises ConvertError naming what is wrong and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types
        raise ConvertError(f"{path.name} is not an ONNX model ({exc}): export it again") from None
    _check_external_data(model, path)
    _check_domains(model, path)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConvertError(f"{path.name} fails the ONNX checker: {first}") from None
    if len(model.graph.node) > MAX_NODES:
        raise ConvertError(f"{path.name} has {len(model.graph.node)} nodes; the limit is "
                           f"{MAX_NODES}")
    return model


def opset(model: onnx.ModelProto) -> int:
    """The model's default-domain opset version."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ConvertError(f"{path.name} keeps weights in external data ({tensor.name}): "
                               "save it as one file (onnx.save(..., "
                               "save_as_external_data=False))")


def _check_domains(model: onnx.ModelProto, path: Path) -> None:
    for node in model.graph.node:
        if node.domain not in ALLOWED_DOMAINS:
            raise ConvertError(f"{path.name} uses custom operator domain {node.domain!r} "
                               f"(node {node.name or node.op_type}); the box runs only "
                               "standard ONNX operators")


def session_error(path: str | Path, model: onnx.ModelProto, exc: Exception) -> ConvertError:
    """A one-line error for a model onnxruntime refuses, naming the opset when that is why."""
    import onnxruntime

    text = str(exc).strip().splitlines()[0]
    if "opset" in text.lower():
        return ConvertError(f"{Path(path).name}: opset {opset(model)} is not supported by "
                            f"onnxruntime {onnxruntime.__version__} ({text}): export with "
                            "an older opset (17 works)")
    return ConvertError(f"onnxruntime cannot load {Path(path).name}: {text}")


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a unique name, so that nodes can be excluded from quantization."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)
    return model
