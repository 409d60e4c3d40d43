"""Bring a model in: an ONNX file as it is, or a PyTorch module exported to ONNX."""

from __future__ import annotations

import importlib
import shutil
import warnings
from pathlib import Path

from tools.errors import ConvertError

OPSET = 17


def ingest(source: str, workdir: Path, input_shape: tuple[int, ...] | None,
           input_name: str, dynamic_batch: bool) -> Path:
    """Copy an .onnx file into `workdir` (keeping its name, which errors then show), or
    export `module:factory` there with an example input shape.

    Raises ConvertError when the source cannot be found or exported.
    """
    if ":" in source and not Path(source).exists():
        dest = workdir / f"{source.replace(':', '.')}.onnx"
        return export_torch(source, dest, input_shape, input_name, dynamic_batch)
    path = Path(source)
    if not path.is_file():
        raise ConvertError(f"model {source} does not exist: pass an .onnx file or "
                           "module:factory with --input-shape")
    dest = workdir / path.name
    shutil.copyfile(path, dest)
    return dest


def export_torch(spec: str, dest: Path, input_shape: tuple[int, ...] | None,
                 input_name: str, dynamic_batch: bool) -> Path:
    """Export the nn.Module that `module:factory()` returns (TorchScript exporter, opset 17)."""
    if not input_shape:
        raise ConvertError("a PyTorch model needs --input-shape, for example 1,3,224,224")
    module_name, _, factory_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise ConvertError(f"cannot import {spec}: {exc}") from None
    import torch

    model = factory().eval()
    axes = {input_name: {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(*input_shape),), str(dest), dynamo=False,
                          opset_version=OPSET, input_names=[input_name],
                          output_names=["output"], dynamic_axes=axes)
    return dest
