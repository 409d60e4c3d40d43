"""Tiny real ONNX models and bundles for tests, built with onnx.helper in a few nodes.

- classify: mean colour of the image -> 4 logits (red, green, blue, dark), so a red image is
  class 0 with a real onnxruntime session behind it;
- embed: the mean colour as a 3-d vector;
- image-to-image: 1 - x (the negative of the image);
- detect: a two-anchor 'face' finder scored by brightness;
- segment: the red channel as the mask;
- edges: the Sobel gradient's magnitude, at any input size;
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
        "edges": {"range": [0.0, 1.0], "color": "gray", "layout": "NCHW", "invert": True,
                  "max_side": 64},
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


def edges_model() -> onnx.ModelProto:
    """An edge detector at any input size: the grey level's Sobel gradient magnitude
    (|Gx| + |Gy|) / 4, one plane (edges repeated at the border)."""
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    kernels = np.stack([sobel, sobel.T])[:, None] / 4
    nodes = [helper.make_node("ReduceMean", ["input"], ["grey"], axes=[1], keepdims=1),
             helper.make_node("Pad", ["grey", "pads"], ["padded"], mode="edge"),
             helper.make_node("Conv", ["padded", "sobel"], ["gradients"]),
             helper.make_node("Abs", ["gradients"], ["magnitudes"]),
             helper.make_node("ReduceSum", ["magnitudes", "channels"], ["edges"], keepdims=1)]
    inits = [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(kernels, "sobel"),
             numpy_helper.from_array(np.array([1], np.int64), "channels")]
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                          ["batch", 3, "height", "width"])
    out = helper.make_tensor_value_info("edges", TensorProto.FLOAT,
                                        ["batch", 1, "height", "width"])
    return _model(nodes, [image], [out], inits)


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


def crowd_model(count: int = 30, classes: int = 3) -> onnx.ModelProto:
    """A detector that decodes its own boxes (box_format `decoded`): `count` boxes on a grid,
    none overlapping, scored from 0.99 down to 0.5 and shifted by the image's mean (x 1e-3),
    class i % `classes`: more detections than any client takes."""
    side = int(np.ceil(np.sqrt(count)))
    cells = [(i // side, i % side) for i in range(count)]
    boxes = np.array([[[r / side, c / side, (r + 0.8) / side, (c + 0.8) / side]
                       for r, c in cells]], np.float32)  # y0, x0, y1, x1
    scores = np.linspace(0.99, 0.5, count, dtype=np.float32)[None]
    kinds = (np.arange(count) % classes).astype(np.float32)[None]
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Mul", ["m", "tiny"], ["nudge"]),
             helper.make_node("Add", ["score_const", "nudge"], ["scores"]),
             helper.make_node("Add", ["box_const", "zero"], ["boxes"]),
             helper.make_node("Add", ["class_const", "zero2"], ["classes"]),
             helper.make_node("Add", ["count_const", "zero2"], ["count"])]
    inits = [numpy_helper.from_array(np.array(1e-3, np.float32), "tiny"),
             numpy_helper.from_array(scores, "score_const"),
             numpy_helper.from_array(boxes, "box_const"),
             numpy_helper.from_array(kinds, "class_const"),
             numpy_helper.from_array(np.array([count], np.float32), "count_const"),
             numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
             numpy_helper.from_array(np.zeros(1, np.float32), "zero2")]
    outputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, count, 4]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, count]),
               helper.make_tensor_value_info("classes", TensorProto.FLOAT, [1, count]),
               helper.make_tensor_value_info("count", TensorProto.FLOAT, [1])]
    return _model(nodes, [_input(batch=1)], outputs, inits)


def write_crowd(models_dir: Path, name: str, labels: list[str],
                count: int = 30) -> bundles.Bundle:
    """A crowd_model bundle whose classes are `labels` (ids 0, 1, 2... in turn)."""
    spec = manifest(name, "detect")
    output = {"box_format": "decoded", "box_order": "yxyx", "boxes_tensor": 0,
              "scores_tensor": 1, "classes_tensor": 2, "count_tensor": 3,
              "score_threshold": 0.5, "max_detections": 100}
    return write_bundle(models_dir, name, "detect", crowd_model(count, len(labels)),
                        labels=labels, input={**spec["input"], "dynamic_batch": False},
                        output=output)


MODELS = {"classify": classify_model, "embed": embed_model, "image-to-image": negative_model,
          "detect": faces_model, "segment": segment_model, "pose": pose_model,
          "edges": edges_model}


def write_bundle(models_dir: Path, name: str, task: str = "classify",
                 model: onnx.ModelProto | None = None, labels: list[str] | None = None,
                 **changes: Any) -> bundles.Bundle:
    """Write a tiny bundle named `name` into `models_dir` and return it (`labels`: the
    labels file's lines instead of the task's usual ones)."""
    scratch = models_dir / f".{name}.src.onnx"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model or MODELS[task](), scratch)
    try:
        labels = labels or {"classify": LABELS, "detect": ["face"]}.get(task)
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


# -- ocr: three graphs read "YMCK" bars ------------------------------------------------------
#
# The tiny text bundle reads colour bars: a line is a light grey band (a label) with bars on
# it, and each bar is one character by the ink it is printed in: yellow "Y", magenta "M",
# cyan "C", black "K" (the printer's CMYK). Its graphs take what the ocr task feeds
# PP-OCR's: BGR in [-1, 1], where darkness is (1 - x) / 2 per channel.

OCR_LABELS = ["Y", "M", "C", "K"]
OCR_INKS = {"Y": (255, 255, 0), "M": (255, 0, 255), "C": (0, 255, 255), "K": (0, 0, 0)}
OCR_BAND = (190, 190, 190)  # the label's grey: dark enough for the detector, read as blank
OCR_GAIN = 20.0  # the recogniser's logit scale: a full-ink bar is read at ~0.999


def ocr_det_model() -> onnx.ModelProto:
    """The text detector: a (1, 1, H, W) probability map that is high where the picture's
    mean darkness passes 0.12 (sigmoid(30 (darkness - 0.12))), for any input size."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["mean", "slope"], ["scaled"]),
             helper.make_node("Add", ["scaled", "offset"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["prob"])]
    # darkness = (1 - mean) / 2, so 30 (darkness - 0.12) = -15 mean + 11.4
    inits = [numpy_helper.from_array(np.array(-15.0, np.float32), "slope"),
             numpy_helper.from_array(np.array(11.4, np.float32), "offset")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "height", "width"])
    out = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, "height", "width"])
    return _model(nodes, [x], [out], inits)


def ocr_cls_model(upside_down: bool = False) -> onnx.ModelProto:
    """The direction classifier: (N, 2) scores for 0 and 180 degrees, every crop upright
    (or, with `upside_down`, every crop turned)."""
    verdict = [0.0, 1.0] if upside_down else [1.0, 0.0]
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "axis"], ["m1"]),
             helper.make_node("Mul", ["m1", "zeros"], ["nothing"]),
             helper.make_node("Add", ["nothing", "verdict"], ["scores"])]
    inits = [numpy_helper.from_array(np.array([1], np.int64), "axis"),
             numpy_helper.from_array(np.zeros((1, 2), np.float32), "zeros"),
             numpy_helper.from_array(np.array([verdict], np.float32), "verdict")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, 192])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 2])
    return _model(nodes, [x], [out], inits)


def _ocr_weights(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The recogniser's (3, classes) weights and biases over the B, G, R darkness of a time
    step: blank scores 0.6 whatever the ink; Y, M, C score the darkness of their channel
    less half the others'; K the mean darkness; other classes never win."""
    weights = np.zeros((3, classes), np.float32)
    bias = np.full(classes, -1.0, np.float32)
    bias[0] = 0.6
    for k in range(min(3, classes - 1)):  # Y is dark in B, M in G, C in R (BGR input)
        weights[:, k + 1] = -0.5
        weights[k, k + 1] = 1.0
        bias[k + 1] = 0.0
    if classes > 4:
        weights[:, 4] = 1 / 3
        bias[4] = 0.0
    return weights, bias


def ocr_rec_model(classes: int = len(OCR_LABELS) + 2) -> onnx.ModelProto:
    """The CTC recogniser: (N, W / 8, classes) softmax, one step per 8 columns, the class
    of a step by the darkest ink of each colour channel in its columns (see _ocr_weights).
    `classes` is the blank, the labels and the space: give another count for a graph that
    disagrees with its labels."""
    weights, bias = _ocr_weights(classes)
    nodes = [helper.make_node("Mul", ["x", "minus_half"], ["neg"]),
             helper.make_node("Add", ["neg", "half"], ["dark"]),
             helper.make_node("ReduceMax", ["dark"], ["column"], axes=[2], keepdims=1),
             helper.make_node("AveragePool", ["column"], ["steps"], kernel_shape=[1, 8],
                              strides=[1, 8]),
             helper.make_node("Squeeze", ["steps", "row_axis"], ["bct"]),
             helper.make_node("Transpose", ["bct"], ["btc"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["btc", "weights"], ["raw"]),
             helper.make_node("Add", ["raw", "bias"], ["biased"]),
             helper.make_node("Mul", ["biased", "gain"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    inits = [numpy_helper.from_array(np.array(-0.5, np.float32), "minus_half"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array([2], np.int64), "row_axis"),
             numpy_helper.from_array(weights, "weights"),
             numpy_helper.from_array(bias, "bias"),
             numpy_helper.from_array(np.array(OCR_GAIN, np.float32), "gain")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, "width"])
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", "steps", classes])
    return _model(nodes, [x], [out], inits)


def ocr_manifest(name: str, **changes: Any) -> dict[str, Any]:
    """A manifest for the tiny text bundle: det.onnx, cls.onnx and rec.onnx."""
    data = manifest(name, "classify")
    data.update(task="ocr", description="tiny text bundle for tests: reads YMCK colour bars",
                model={"file": "det.onnx", "sha256": "0" * 64, "precision": "fp32"},
                output={"labels": "labels.txt"},
                graphs={graph: {"file": f"{graph}.onnx", "sha256": "0" * 64,
                                "precision": "fp32"} for graph in ("cls", "rec")})
    data["input"] = {**data["input"], "name": "x", "size": [64, 64], "color": "BGR",
                     "resize": "stretch", "scale": 1 / 127.5, "mean": [127.5] * 3,
                     "std": [127.5] * 3, "dynamic_batch": False}
    data.update(changes)
    return data


def ocr_bundle(models_dir: Path, name: str = "tiny-text", labels: list[str] | None = None,
               det: onnx.ModelProto | None = None, cls: onnx.ModelProto | None = None,
               rec: onnx.ModelProto | None = None, **changes: Any) -> bundles.Bundle:
    """Write the tiny text bundle `name` into `models_dir` (other graphs or labels where
    given; `changes` replace manifest fields) and return it."""
    scratch = models_dir / f".{name}.src"
    scratch.mkdir(parents=True, exist_ok=True)
    graphs = {"det": det or ocr_det_model(), "cls": cls or ocr_cls_model(),
              "rec": rec or ocr_rec_model()}
    try:
        for graph, model in graphs.items():
            onnx.save(model, scratch / f"{graph}.onnx")
        return bundles.write(models_dir / name, ocr_manifest(name, **changes),
                             scratch / "det.onnx",
                             labels=OCR_LABELS if labels is None else labels,
                             graphs={g: scratch / f"{g}.onnx" for g in ("cls", "rec")})
    finally:
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()


def ocr_picture(lines: list[str], size: tuple[int, int] = (480, 240), band: int = 24,
                inks: dict[str, tuple[int, int, int]] | None = None,
                at: tuple[int, int] = (24, 24)):
    """A white picture with one grey band per line, `band` pixels high, each character of
    the line a bar of its ink `band` wide with a band-wide gap after it; the bands are
    3 `band` apart from `at`. Returns (picture, [x0, y0, x1, y1] of each band)."""
    from PIL import Image, ImageDraw

    inks = {**OCR_INKS, **(inks or {})}
    picture = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    boxes = []
    for row, text in enumerate(lines):
        x0, y0 = at[0], at[1] + 3 * band * row
        x1 = x0 + band * (2 * len(text) + 1)
        draw.rectangle([x0, y0, x1 - 1, y0 + band - 1], fill=OCR_BAND)
        for i, char in enumerate(text):
            left = x0 + band * (2 * i + 1)
            draw.rectangle([left, y0, left + band - 1, y0 + band - 1], fill=inks[char])
        boxes.append([x0, y0, x1, y0 + band])
    return picture, boxes


def ocr_hostile_rec_model(kind: str = "endless", lines: int = 3,
                          gigabytes: float = 3.0) -> onnx.ModelProto:
    """ocr_rec_model's answer, but once `lines` or more crops come in one run (a page of
    text: a photograph gives this detector fewer) it first loops 10^12 times (`endless`) or
    allocates `gigabytes` of zeros (`hungry`). No single-picture probe of the detector
    alone ever reaches it."""
    base = ocr_rec_model()
    nodes = list(base.graph.node)
    nodes[-1].output[0] = "probs_raw"
    nodes += [helper.make_node("Shape", ["x"], ["shape"]),
              helper.make_node("Gather", ["shape", "first"], ["crops"], axis=0),
              helper.make_node("Cast", ["crops"], ["crops_f"], to=TensorProto.FLOAT),
              helper.make_node("Sub", ["crops_f", "fewest"], ["over"]),
              helper.make_node("Relu", ["over"], ["over_pos"]),
              helper.make_node("Min", ["over_pos", "one"], ["trigger"])]  # 0, or 1 on text
    inits = [*base.graph.initializer,
             numpy_helper.from_array(np.array(0, np.int64), "first"),
             numpy_helper.from_array(np.array(lines - 1, np.float32), "fewest"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    if kind == "endless":
        body = helper.make_graph(
            [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
             helper.make_node("Add", ["count_in", "step"], ["count_out"])], "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("count_in", TensorProto.FLOAT, [])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("count_out", TensorProto.FLOAT, [])],
            [numpy_helper.from_array(np.array(1.0, np.float32), "step")])
        nodes += [helper.make_node("Mul", ["trigger", "trips_f"], ["scaled"]),
                  helper.make_node("Cast", ["scaled"], ["trips"], to=TensorProto.INT64),
                  helper.make_node("Loop", ["trips", "true", "zero"], ["count"], body=body),
                  helper.make_node("Mul", ["count", "zero"], ["nothing"])]
        inits += [numpy_helper.from_array(np.array(1e12, np.float32), "trips_f"),
                  numpy_helper.from_array(np.array(True), "true"),
                  numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    else:
        nodes += [helper.make_node("Mul", ["trigger", "floats"], ["scaled"]),
                  helper.make_node("Cast", ["scaled"], ["length"], to=TensorProto.INT64),
                  helper.make_node("Reshape", ["length", "one_axis"], ["block_shape"]),
                  helper.make_node("ConstantOfShape", ["block_shape"], ["block"],
                                   value=helper.make_tensor("v", TensorProto.FLOAT, [1],
                                                            [0.0])),
                  helper.make_node("ReduceSum", ["block"], ["nothing"], keepdims=0)]
        inits += [numpy_helper.from_array(np.array(gigabytes * 1e9 / 4, np.float32), "floats"),
                  numpy_helper.from_array(np.array([1], np.int64), "one_axis")]
    nodes.append(helper.make_node("Add", ["probs_raw", "nothing"], ["probs"]))
    return _model(nodes, list(base.graph.input), list(base.graph.output), inits)
