"""Tiny real ONNX models and bundles for tests, built with onnx.helper in a few nodes.

- classify: mean colour of the image -> 4 logits (red, green, blue, dark), so a red image is
  class 0 with a real onnxruntime session behind it;
- embed: the mean colour as a 3-d vector;
- image-to-image: 1 - x (the negative of the image);
- detect: a two-anchor 'face' finder scored by brightness;
- segment: the red channel as the mask;
- pose: 17 keypoints on a diagonal, scored by brightness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from appliance import bundle as bundles

SIZE = 8
LABELS = ["red", "green", "blue", "dark"]


def _model(nodes, inputs, outputs, initializers=(), opset: int = 13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _input(name: str = "input", batch: Any = "batch", size: int = SIZE):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 3, size, size])


def classify_model(batch: Any = "batch") -> onnx.ModelProto:
    """Mean colour -> logits; weights make the dominant channel win, 'dark' wins on black."""
    weights = np.array([[4, -2, -2], [-2, 4, -2], [-2, -2, 4], [-3, -3, -3]], np.float32)
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1)]
    inits = [numpy_helper.from_array(weights, "W"),
             numpy_helper.from_array(np.array([0, 0, 0, 1], np.float32), "B")]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 4])
    return _model(nodes, [_input(batch=batch)], [out], inits)


def slow_classify_model(matmuls: int = 40, side: int = 512) -> onnx.ModelProto:
    """classify_model plus a chain of input-dependent matrix products (no constant folding
    can skip them): a model that takes a noticeable time per request, for drain tests."""
    base = classify_model()
    a = np.eye(side, dtype=np.float32) * 0.5
    nodes = [
        *base.graph.node,
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Reshape", ["m", "shape"], ["m3"]),
        helper.make_node("Mul", ["A", "m3"], ["b0"]),
    ]
    for i in range(matmuls):
        nodes.append(helper.make_node("MatMul", [f"b{i}", "A"], [f"b{i + 1}"]))
    nodes += [helper.make_node("ReduceSum", [f"b{matmuls}", "axes"], ["s"], keepdims=0),
              helper.make_node("Mul", ["s", "zero"], ["z"]),
              helper.make_node("Unsqueeze", ["z", "one_axis"], ["z2"]),
              helper.make_node("Add", ["logits_raw", "z2"], ["logits"])]
    nodes[2].output[0] = "logits_raw"
    inits = [
        *base.graph.initializer,
        numpy_helper.from_array(a, "A"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(np.array([1], np.int64), "one_axis"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    return _model(nodes, list(base.graph.input), list(base.graph.output), inits)


def endless_model(steps: float = 1e12) -> onnx.ModelProto:
    """classify_model's outputs, after a Loop of max(input) x `steps` iterations: zeros
    finish at once (what a zeros-only probe sees), any bright image runs for ever."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["count_in", "one"], ["count_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("count_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("count_out", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    nodes = [helper.make_node("ReduceMax", ["input"], ["top"], keepdims=0),
             helper.make_node("Mul", ["top", "steps"], ["scaled"]),
             helper.make_node("Cast", ["scaled"], ["trips"], to=TensorProto.INT64),
             helper.make_node("Loop", ["trips", "true", "zero"], ["count"], body=body),
             helper.make_node("Mul", ["count", "zero"], ["nothing"])]
    inits = [numpy_helper.from_array(np.array(steps, np.float32), "steps"),
             numpy_helper.from_array(np.array(True), "true"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    return _input_dependent(nodes, inits, "nothing")


def hungry_model(gigabytes: float = 3.0) -> onnx.ModelProto:
    """classify_model's outputs, after a ConstantOfShape of max(input) x `gigabytes` GB of
    float zeros: zeros as input allocate nothing, a bright image gigabytes."""
    nodes = [helper.make_node("ReduceMax", ["input"], ["top"], keepdims=0),
             helper.make_node("Mul", ["top", "floats"], ["scaled"]),
             helper.make_node("Cast", ["scaled"], ["length"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["length", "one_axis"], ["shape"]),
             helper.make_node("ConstantOfShape", ["shape"], ["block"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
             helper.make_node("ReduceSum", ["block"], ["nothing"], keepdims=0)]
    inits = [numpy_helper.from_array(np.array(gigabytes * 1e9 / 4, np.float32), "floats"),
             numpy_helper.from_array(np.array([1], np.int64), "one_axis")]
    return _input_dependent(nodes, inits, "nothing")


def _input_dependent(nodes, inits, scalar: str) -> onnx.ModelProto:
    """classify_model with `nodes` computing `scalar` (0) from the input, added to its
    logits so that no optimizer can drop them."""
    base = classify_model()
    classify = list(base.graph.node)
    classify[-1].output[0] = "logits_raw"
    tail = [helper.make_node("Add", ["logits_raw", scalar], ["logits"])]
    return _model([*classify, *nodes, *tail], list(base.graph.input),
                  list(base.graph.output), [*base.graph.initializer, *inits])


def embed_model() -> onnx.ModelProto:
    """The mean colour as a 3-d feature vector."""
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["embedding"])]
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 3])
    return _model(nodes, [_input()], [out])


def negative_model() -> onnx.ModelProto:
    """1 - x: the photographic negative of an image in [0, 1]."""
    nodes = [helper.make_node("Sub", ["one", "input"], ["output"])]
    inits = [numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    return _model(nodes, [_input()], [out], inits)


def manifest(name: str, task: str, **changes: Any) -> dict[str, Any]:
    """A valid manifest for the tiny models; `changes` replace top-level fields."""
    outputs = {
        "classify": {"labels": "labels.txt", "activation": "softmax", "top_k": 3},
        "embed": {"dim": 3, "normalize": "l2"},
        "image-to-image": {"range": [0.0, 1.0], "color": "RGB", "layout": "NCHW",
                           "max_side": 64},
        "detect": {"box_format": "ssd-anchors", "strides": [8], "boxes_tensor": 0,
                   "scores_tensor": 1},
        "segment": {"layout": "NCHW", "channel": 0, "max_side": 64},
        "pose": {"score_threshold": 0.3},
    }
    data = {
        "format": bundles.FORMAT, "name": name, "version": "0.0.1", "task": task,
        "description": f"tiny {task} model for tests",
        "attribution": {"author": "Test Author", "source": "tests/models.py",
                        "license": "CC0-1.0"},
        "model": {"file": "model.onnx", "sha256": "0" * 64, "precision": "fp32"},
        "input": {"name": "input", "layout": "NCHW", "size": [SIZE, SIZE],
                  "resize": "stretch", "color": "RGB", "scale": 1 / 255,
                  "mean": [0, 0, 0], "std": [1, 1, 1], "dtype": "float32",
                  "dynamic_batch": True},
        "output": outputs[task],
    }
    data.update(changes)
    return data


def faces_model() -> onnx.ModelProto:
    """A two-anchor detector (stride 8 on the 8 px input): anchor 0 always finds a 'face'
    covering the middle half of the input, anchor 1 never does; its score follows the
    image's brightness, so a black image finds nothing."""
    boxes = np.array([[[0, 0, 4, 4], [0, 0, 4, 4]]], np.float32)  # cx, cy offsets; w, h px
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Mul", ["m", "gain"], ["g"]),
             helper.make_node("Add", ["g", "bias"], ["logit"]),
             helper.make_node("Reshape", ["logit", "score_shape"], ["scores"]),
             helper.make_node("Add", ["box_const", "zero"], ["boxes"])]
    inits = [numpy_helper.from_array(np.array(20.0, np.float32), "gain"),
             numpy_helper.from_array(np.array([-5.0, -50.0], np.float32), "bias"),
             numpy_helper.from_array(np.array([1, 2, 1], np.int64), "score_shape"),
             numpy_helper.from_array(boxes, "box_const"),
             numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero")]
    outputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 2, 4]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, 1])]
    return _model(nodes, [_input(batch=1)], outputs, inits)


def segment_model() -> onnx.ModelProto:
    """The red channel as the foreground mask (NCHW, 1 channel): red things are 'people'."""
    nodes = [helper.make_node("Slice", ["input", "start", "end", "axis"], ["mask"])]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([1], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    out = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])
    return _model(nodes, [_input()], [out], inits)


# Where the tiny pose model puts its 17 keypoints: (y, x) as fractions of its input, along
# the diagonal from the top-left quarter to the bottom-right quarter.
POSE_POINTS = np.stack([np.linspace(0.25, 0.75, 17), np.linspace(0.25, 0.75, 17)], axis=1)


def pose_model() -> onnx.ModelProto:
    """17 keypoints at POSE_POINTS, each scored by the image's mean brightness (a black image
    has no confident keypoint), as MoveNet's [1, 1, 17, 3] (y, x, score)."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Mul", ["score_mask", "m"], ["scores"]),
             helper.make_node("Add", ["points", "scores"], ["keypoints"])]
    points = np.zeros((1, 1, 17, 3), np.float32)
    points[0, 0, :, :2] = POSE_POINTS
    mask = np.zeros((1, 1, 17, 3), np.float32)
    mask[..., 2] = 1.0
    inits = [numpy_helper.from_array(points, "points"),
             numpy_helper.from_array(mask, "score_mask")]
    out = helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [1, 1, 17, 3])
    return _model(nodes, [_input(batch=1)], [out], inits)


MODELS = {"classify": classify_model, "embed": embed_model, "image-to-image": negative_model,
          "detect": faces_model, "segment": segment_model, "pose": pose_model}


def write_bundle(models_dir: Path, name: str, task: str = "classify",
                 model: onnx.ModelProto | None = None, **changes: Any) -> bundles.Bundle:
    """Write a tiny bundle named `name` into `models_dir` and return it."""
    scratch = models_dir / f".{name}.src.onnx"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model or MODELS[task](), scratch)
    try:
        labels = {"classify": LABELS, "detect": ["face"]}.get(task)
        return bundles.write(models_dir / name, manifest(name, task, **changes), scratch,
                             labels=labels)
    finally:
        scratch.unlink()


def _conv(rng, name: str, cin: int, cout: int, x: str, y: str, stride: int = 1):
    weight = (rng.normal(size=(cout, cin, 3, 3)) * np.sqrt(2 / (cin * 9))).astype(np.float32)
    node = helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [y], pads=[1, 1, 1, 1],
                            strides=[stride, stride], name=name)
    return node, [numpy_helper.from_array(weight, f"{name}_w"),
                  numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b")]


def conv_net(size: int = 32, outlier: bool = False, seed: int = 0) -> onnx.ModelProto:
    """A three-layer conv net that really quantizes: conv-relu x3, global pool, 4 logits.

    With `outlier`, one activation element is pushed to 5000 before the pool, so per-tensor
    INT8 crushes every other value of that tensor: the accuracy gate fails until the nodes
    around it are kept in float (the converter's fallback).
    """
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for i, (cin, cout, stride) in enumerate(((3, 16, 1), (16, 32, 2), (32, 32, 1)), start=1):
        conv, weights = _conv(rng, f"c{i}", cin, cout, "input" if i == 1 else f"r{i - 1}",
                              f"h{i}", stride)
        nodes += [conv, helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu{i}")]
        inits += weights
    pooled_input = "r3"
    if outlier:
        spike = np.zeros((1, 32, size // 2, size // 2), np.float32)
        spike[0, 0, 0, 0] = 5000.0
        inits.append(numpy_helper.from_array(spike, "spike"))
        nodes.append(helper.make_node("Add", ["r3", "spike"], ["spiked"], name="outlier_add"))
        pooled_input = "spiked"
    fc = rng.normal(size=(4, 32)).astype(np.float32)
    fc[:, 0] = 0  # the outlier's channel carries no answer, so only the crushing matters
    inits += [numpy_helper.from_array(fc, "fc_w"),
              numpy_helper.from_array(np.zeros(4, np.float32), "fc_b")]
    nodes += [helper.make_node("GlobalAveragePool", [pooled_input], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1,
                               name="fc")]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])
    return _model(nodes, [_input(size=size)], [out], inits)


def conv_manifest(name: str, size: int = 32) -> dict[str, Any]:
    """A classify manifest for conv_net."""
    data = manifest(name, "classify")
    data["input"]["size"] = [size, size]
    data["output"]["top_k"] = 4
    return data
