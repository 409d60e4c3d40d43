"""Export a bundle as an NVIDIA Triton model repository (onnxruntime backend), so the same
model serves on a Triton or KServe cluster when one box is not enough."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from appliance.bundle import Bundle
from tools.errors import ConvertError

DTYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.UINT8: "TYPE_UINT8",
          onnx.TensorProto.INT8: "TYPE_INT8", onnx.TensorProto.INT64: "TYPE_INT64",
          onnx.TensorProto.INT32: "TYPE_INT32", onnx.TensorProto.FLOAT16: "TYPE_FP16"}


def unsupported(bundle: Bundle) -> str | None:
    """Why `bundle` cannot be exported, in one line for the export's output; None when it
    can. A bundle of several graphs needs the box's own steps between them (text: boxes
    from the detector's map, each line cut out, turned and read), which Triton's onnxruntime
    backend cannot run: its main graph alone would answer something else."""
    if not bundle.manifest.graphs:
        return None
    return (f"{bundle.name} is left out of the Triton repository: task "
            f"{bundle.manifest.task} runs {len(bundle.manifest.graphs) + 1} graphs "
            f"({bundle.manifest.model['file']}, "
            f"{', '.join(g['file'] for g in bundle.manifest.graphs.values())}) with steps "
            "between them that Triton's onnxruntime backend cannot run; serve it from a box")


def export(bundle: Bundle, repository: Path, max_batch: int = 8) -> Path:
    """Write REPOSITORY/NAME/1/model.onnx and REPOSITORY/NAME/config.pbtxt; returns the folder.
    Raises ConvertError, writing nothing, for a bundle `unsupported` names."""
    reason = unsupported(bundle)
    if reason:
        raise ConvertError(reason)
    folder = Path(repository) / bundle.name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle.model_path, folder / "1" / "model.onnx")
    model = onnx.load(str(bundle.model_path), load_external_data=False)
    batching = bundle.manifest.input.dynamic_batch
    (folder / "config.pbtxt").write_text(config_text(bundle.name, model, batching, max_batch))
    if (bundle.path / "labels.txt").is_file():
        shutil.copyfile(bundle.path / "labels.txt", folder / "labels.txt")
    return folder


def config_text(name: str, model: onnx.ModelProto, batching: bool, max_batch: int) -> str:
    """config.pbtxt for the onnxruntime backend; dims exclude the batch dimension when the
    model batches (Triton adds it), and dynamic batching is on then."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    lines = [f'name: "{name}"', 'backend: "onnxruntime"',
             f"max_batch_size: {max_batch if batching else 0}"]
    lines += _tensors("input", inputs, batching)
    lines += _tensors("output", model.graph.output, batching)
    if batching:
        lines.append("dynamic_batching { max_queue_delay_microseconds: 2000 }")
    lines.append("instance_group [ { count: 1, kind: KIND_AUTO } ]")
    return "\n".join(lines) + "\n"


def _tensors(kind: str, values, batching: bool) -> list[str]:
    entries = []
    for value in values:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if batching:
            dims = dims[1:]
        entries.append(f'  {{ name: "{value.name}" data_type: {DTYPES[tensor.elem_type]} '
                       f"dims: [ {', '.join(str(d) for d in dims)} ] }}")
    return [f"{kind} [", ",\n".join(entries), "]"]
