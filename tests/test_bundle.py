import json

import pytest

from appliance import bundle as bundles
from appliance.errors import BundleError
from tests import models as tiny


def _rewrite(path, **changes):
    manifest_path = path / "manifest.json"
    data = json.loads(manifest_path.read_text())
    data.update(changes)
    manifest_path.write_text(json.dumps(data))


def test_write_then_read(tmp_path):
    written = tiny.write_bundle(tmp_path, "tiny-classify")
    read = bundles.read(tmp_path / "tiny-classify")
    assert read.manifest == written.manifest
    assert read.labels == tiny.LABELS
    assert read.manifest.model["sha256"] == bundles.file_sha256(read.model_path)
    assert read.summary()["license"] == "CC0-1.0"
    assert not list(tmp_path.glob(".tiny-classify*")), "staging left behind"


def test_unknown_format_is_refused(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    _rewrite(tmp_path / "b", format="appliance-bundle/2")
    with pytest.raises(BundleError, match=r"b/manifest.json.format: 'appliance-bundle/2' is "
                                          "not a format this box reads"):
        bundles.read(tmp_path / "b")


def test_unknown_field_is_refused(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    _rewrite(tmp_path / "b", colour="red")
    with pytest.raises(BundleError, match=r"b/manifest.json.colour: unknown field"):
        bundles.read(tmp_path / "b")


def test_nested_errors_name_the_field(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    data = tiny.manifest("b", "classify")
    data["input"]["layout"] = "CHWN"
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"b/manifest.json.input.layout: must be one of NCHW"):
        bundles.read(tmp_path / "b")


def test_unknown_task_is_refused(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    _rewrite(tmp_path / "b", task="dance")
    with pytest.raises(BundleError, match=r"b/manifest.json.task: must be one of classify"):
        bundles.read(tmp_path / "b")


def test_checksum_mismatch_names_the_file(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    with open(tmp_path / "b" / "model.onnx", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(BundleError, match=r"b/model.onnx: sha256 is [0-9a-f]{64}, the "
                                          "manifest says"):
        bundles.read(tmp_path / "b")


def test_symlinked_model_is_refused(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    model = tmp_path / "b" / "model.onnx"
    model.rename(tmp_path / "elsewhere.onnx")
    model.symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(BundleError, match="b/model.onnx: is a symbolic link"):
        bundles.read(tmp_path / "b")


def test_model_file_outside_the_bundle_is_refused(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    data = tiny.manifest("b", "classify")
    data["model"]["file"] = "../x.onnx"
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="model.file: must be a plain file name"):
        bundles.read(tmp_path / "b")


def test_missing_labels_and_bad_json(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    (tmp_path / "b" / "labels.txt").unlink()
    with pytest.raises(BundleError, match="b/labels.txt: missing"):
        bundles.read(tmp_path / "b")
    (tmp_path / "b" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="b/manifest.json: not valid JSON"):
        bundles.read(tmp_path / "b")


def test_bad_name_and_zero_std():
    with pytest.raises(BundleError, match="manifest.json.name: must be 1-64 characters"):
        bundles.parse_manifest(tiny.manifest("Bad Name", "classify"))
    data = tiny.manifest("b", "classify")
    data["input"]["std"] = [1, 0, 1]
    with pytest.raises(BundleError, match="input.std: must not contain 0"):
        bundles.parse_manifest(data)


def test_write_replaces_an_existing_bundle(tmp_path):
    tiny.write_bundle(tmp_path, "b")
    tiny.write_bundle(tmp_path, "b", "classify", version="2.0.0")
    assert bundles.read(tmp_path / "b").manifest.version == "2.0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_invalid_manifest_is_not_written(tmp_path):
    with pytest.raises(BundleError):
        tiny.write_bundle(tmp_path, "b", "classify", format="appliance-bundle/0")
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == []
