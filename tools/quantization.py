"""Quantization candidates per target, one QDQ static quantization per candidate, and the
sensitivity ranking used to exclude nodes when a candidate fails the accuracy gate.

Every quantizer argument is written out: onnxruntime's defaults changed between releases.
Never `quantize_dynamic` for convolutional models.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from tools.calibration import Reader
from tools.errors import ConvertError

TARGETS = ("auto", "arm64", "x86-vnni", "x86", "tensorrt")
METHODS = ("MinMax", "Percentile", "Entropy")
TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
SENSITIVITY_SAMPLES = 8  # every intermediate tensor is kept per image: keep this small


@dataclass(frozen=True)
class Candidate:
    """One set of quantization settings."""

    activation: str
    weight: str
    per_channel: bool = True
    reduce_range: bool = False
    method: str = "MinMax"
    symmetric: bool = False
    tensorrt: bool = False
    exclude: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        kind = ("U8" if self.activation == "uint8" else "S8") + \
               ("S8" if self.weight == "int8" else "U8")
        parts = [kind, "per-channel" if self.per_channel else "per-tensor", self.method]
        if self.reduce_range:
            parts.append("reduce-range")
        if self.tensorrt:
            parts.append("TensorRT QDQ")
        if self.exclude:
            parts.append(f"{len(self.exclude)} nodes kept float")
        return " ".join(parts)

    def describe(self, samples: int) -> dict:
        """The manifest's `model.quantization` for this candidate."""
        return {"format": "QDQ", "activation_type": self.activation,
                "weight_type": self.weight, "per_channel": self.per_channel,
                "reduce_range": self.reduce_range, "symmetric": self.symmetric,
                "calibration": {"method": self.method, "samples": samples},
                "excluded_nodes": list(self.exclude)}


def resolve_target(target: str) -> str:
    """'auto' becomes the building machine's target."""
    if target != "auto":
        return target
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "arm64"
    return "x86-vnni" if _has_vnni() else "x86"


def _has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def candidates(target: str) -> list[Candidate]:
    """The base settings to try for a target (MinMax calibration; others come on failure)."""
    target = resolve_target(target)
    if target == "arm64":
        return [Candidate("uint8", "int8"), Candidate("int8", "int8")]
    if target == "x86-vnni":
        return [Candidate("uint8", "int8")]
    if target == "x86":
        return [Candidate("uint8", "int8", reduce_range=True)]
    if target == "tensorrt":
        return [Candidate("int8", "int8", symmetric=True, tensorrt=True)]
    raise ConvertError(f"unknown --target {target!r}: use one of {', '.join(TARGETS)}")


def with_method(candidate: Candidate, method: str) -> Candidate:
    return replace(candidate, method=method)


def preprocess(source: Path, dest: Path) -> str:
    """onnxruntime's quant_pre_process; falls back to skipping symbolic shape inference.

    Returns a note for the report. Raises ConvertError when both fail.
    """
    # Symbolic shape inference leaves sym_shape_infer_temp.onnx in the working folder when
    # it fails: run it in the destination's folder, not wherever the converter was started.
    source, dest = source.resolve(), dest.resolve()  # before the working folder changes
    with contextlib.chdir(dest.parent):
        return _preprocess(source, dest)


def _preprocess(source: Path, dest: Path) -> str:
    try:
        _quiet(quant_pre_process, str(source), str(dest))
        return "quant_pre_process"
    except Exception as first:  # onnxruntime raises untyped errors from shape inference
        try:
            _quiet(quant_pre_process, str(source), str(dest), skip_symbolic_shape=True)
            return f"quant_pre_process(skip_symbolic_shape=True) after: {first}"
        except Exception as exc:
            raise ConvertError(f"onnxruntime cannot pre-process the model: {exc}") from None


def quantize(source: Path, dest: Path, candidate: Candidate, reader: Reader) -> None:
    """QDQ static quantization of `source` into `dest` with `candidate`'s settings."""
    reader.rewind()
    # Not CalibMaxIntermediateOutputs: in onnxruntime 1.32 it drops the collected outputs
    # instead of merging their ranges ("No data is collected"). Memory is bounded by
    # Options.max_calibration instead.
    extra = {"ActivationSymmetric": candidate.symmetric, "WeightSymmetric": True,
             "CalibMovingAverage": False}
    if candidate.method == "Percentile":
        extra.update(CalibPercentile=99.999)
    if candidate.tensorrt:
        extra.update(AddQDQPairToWeight=True, DedicatedQDQPair=True,
                     QDQOpTypePerChannelSupportToAxis={"MatMul": 1})
    _quiet(quantize_static, str(source), str(dest), reader,
           quant_format=QuantFormat.QDQ, op_types_to_quantize=None,
           per_channel=candidate.per_channel, reduce_range=candidate.reduce_range,
           activation_type=TYPES[candidate.activation], weight_type=TYPES[candidate.weight],
           nodes_to_quantize=None, nodes_to_exclude=list(candidate.exclude),
           use_external_data_format=False,
           calibrate_method=getattr(CalibrationMethod, candidate.method),
           extra_options=extra)


def sensitive_nodes(float_model: Path, qdq_model: Path, reader: Reader,
                    workdir: Path) -> list[tuple[str, ...]]:
    """Float-model nodes ranked by how much quantization error each one adds, worst first.

    The error is onnxruntime's qdq_loss_debug signal-to-quantization-noise ratio (SQNR, dB)
    of each activation in the quantized model against the float model; a node's damage is the
    SQNR it loses between its inputs and its output. Each entry also names the producers of
    the node's inputs: a tensor stays float only when its producer and its consumer both do.
    """
    from onnxruntime.quantization import qdq_loss_debug as debug

    float_aug, qdq_aug = workdir / "float.debug.onnx", workdir / "qdq.debug.onnx"
    reader = Reader(reader.input_name, reader.samples[:SENSITIVITY_SAMPLES])
    _quiet(debug.modify_model_output_intermediate_tensors, str(float_model), str(float_aug))
    _quiet(debug.modify_model_output_intermediate_tensors, str(qdq_model), str(qdq_aug))
    float_acts = _quiet(debug.collect_activations, str(float_aug), reader)
    reader.rewind()
    qdq_acts = _quiet(debug.collect_activations, str(qdq_aug), reader)
    errors = debug.compute_activation_error(debug.create_activation_matching(qdq_acts,
                                                                             float_acts))
    sqnr = {name: _finite(e.get("xmodel_err")) for name, e in errors.items()}
    return rank_by_damage(onnx.load(str(float_model)).graph, sqnr)


def rank_by_damage(graph: onnx.GraphProto, sqnr: dict[str, float]) -> list[tuple[str, ...]]:
    """(node, producers of its inputs...) ordered by SQNR lost across the node, worst first.

    A tensor that was not measured (a Conv output fused into its Relu, say) takes the SQNR of
    the nearest measured tensor upstream; weights and graph inputs count as exact (100 dB).
    """
    nodes = {out: node for node in graph.node for out in node.output}
    known: dict[str, float] = {}

    def level(tensor: str) -> float:
        if tensor in sqnr:
            return sqnr[tensor]
        if tensor not in known:
            known[tensor] = 100.0  # guards cycles; graph inputs and weights stay exact
            node = nodes.get(tensor)
            if node is not None:
                known[tensor] = min((level(i) for i in node.input if i), default=100.0)
        return known[tensor]

    damage = []
    for node in graph.node:
        measured = [sqnr[o] for o in node.output if o in sqnr]
        if not measured:
            continue
        before = min((level(i) for i in node.input if i), default=100.0)
        feeding = tuple(nodes[i].name for i in node.input if i in nodes)
        damage.append((before - min(measured), (node.name, *feeding)))
    damage.sort(key=lambda item: -item[0])
    return [group for _, group in damage]


MOVING = {"Reshape", "Concat", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


def output_heads(graph: onnx.GraphProto) -> tuple[str, ...]:
    """The nodes that compute the graph's outputs: the data-movement ops in front of each
    output and the compute nodes feeding them (a detector's box and score convolutions).

    Quantizing raw outputs is where task-level meaning is most fragile: a score logit whose
    per-tensor range reaches -700 cannot keep the sign around 0 that decides a detection.
    """
    producers = {out: node for node in graph.node for out in node.output}
    heads: dict[str, None] = {}
    frontier = [o.name for o in graph.output]
    while frontier:
        node = producers.get(frontier.pop())
        if node is None or node.name in heads:
            continue
        heads[node.name] = None
        if node.op_type in MOVING:
            frontier += [i for i in node.input if i in producers]
    return tuple(heads)


def _finite(value) -> float:
    if value is None or value != value:  # missing or NaN: treat as destroyed
        return 0.0
    return min(float(value), 100.0)


def _quiet(function, *args, **kwargs):
    """Run an onnxruntime quantization helper without its progress chatter."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return function(*args, **kwargs)
    finally:
        logger.setLevel(level)
