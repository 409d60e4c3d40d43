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
                                          "manifest.s model.sha256 says"):
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


def _manifest_with(tmp_path, **changes):
    tiny.write_bundle(tmp_path, "b")
    data = json.loads((tmp_path / "b" / "manifest.json").read_text())
    for path, value in changes.items():
        section, _, key = path.rpartition(".")
        (data[section] if section else data)[key] = value
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(data))
    return tmp_path / "b"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("attribution.author", "A" * 200_000, r"b/manifest.json.attribution.author: is 200000 "
     r"characters long, the limit is 300: shorten it \(got 'AAAA"),
    ("version", "1.0\nX-Injected: yes", r"b/manifest.json.version: has a newline or control "
     r"character \(U\+000A\) at character 4: use one line of plain text"),
    ("version", "1" * 65, "version: is 65 characters long, the limit is 64"),
    ("attribution.license", "MIT\u202e", r"license: has a newline or control character "
     r"\(U\+202E\)"),
    ("description", "x" * 4001, "description: is 4001 characters long, the limit is 4000"),
    ("output.labels", "l" * 300, "output.labels: is 300 characters long, the limit is 256"),
])
def test_row36_manifest_strings_are_capped(tmp_path, field, value, message):
    folder = _manifest_with(tmp_path, **{field: value})
    with pytest.raises(BundleError, match=message) as caught:
        bundles.read(folder)
    assert len(caught.value.message) < 400  # the value is quoted short, never whole


def test_row36_non_latin_text_and_a_multiline_description_are_welcome(tmp_path):
    folder = _manifest_with(tmp_path, **{
        "attribution.license": "CC BY 4.0 \u2014 \u7f72\u540d",
        "attribution.author": "\u5f20\u4f1f", "description": "line one\nline two"})
    found = bundles.read(folder)
    assert found.manifest.attribution["author"] == "\u5f20\u4f1f"


@pytest.mark.parametrize(("size", "message"), [
    ([6000, 6000], r"input.size: 6000 x 6000 has a side over 4096, the limit"),
    ([4096, 2048], r"input.size: 4096 x 2048 is over 4,194,304 pixels, the limit"),
])
def test_row34_input_size_is_capped(tmp_path, size, message):
    spec = dict(tiny.manifest("b", "classify")["input"], size=size)
    with pytest.raises(BundleError, match=message):
        bundles.read(_manifest_with(tmp_path, input=spec))


def test_row34_a_big_labels_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    tiny.write_bundle(tmp_path, "b")
    (tmp_path / "b" / "labels.txt").write_bytes(b"cat\n" * 300_000)  # 1.2 MB
    read_text = bundles.Path.read_text

    def guarded(path, *args, **kwargs):
        assert path.name != "labels.txt", "the labels file was read before its size check"
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(bundles.Path, "read_text", guarded)
    with pytest.raises(BundleError, match=r"b/labels.txt: 1,200,000 bytes, over the "
                       r"1,048,576 byte limit for a labels file"):
        bundles.read(tmp_path / "b")


@pytest.mark.parametrize(("content", "message"), [
    ("x\n" * 100_001, r"b/labels.txt: 100,001 lines, over the limit of 100,000"),
    ("cat\n" + "d" * 201 + "\n", r"b/labels.txt: line 2 is 201 characters long, the limit "
     r"is 200"),
    ("cat\ndo\x00g\n", r"b/labels.txt: line 2 has a newline or control character \(U\+0000\)"),
])
def test_row34_labels_lines_are_capped(tmp_path, content, message):
    tiny.write_bundle(tmp_path, "b")
    (tmp_path / "b" / "labels.txt").write_text(content)
    with pytest.raises(BundleError, match=message):
        bundles.read(tmp_path / "b")


# -- bundles with more than one graph (the ocr task: det in `model`, cls and rec in `graphs`) --

def _graphs_changed(tmp_path, change) -> bundles.Bundle:
    found = tiny.ocr_bundle(tmp_path, "text")
    manifest = json.loads((found.path / "manifest.json").read_text())
    change(manifest["graphs"])
    (found.path / "manifest.json").write_text(json.dumps(manifest))
    return found


def test_a_text_bundle_checksums_and_names_each_graph(tmp_path):
    found = tiny.ocr_bundle(tmp_path, "text")
    assert sorted(found.manifest.graphs) == ["cls", "rec"]
    assert found.files() == {"model": tmp_path / "text" / "det.onnx",
                             "graphs.cls": tmp_path / "text" / "cls.onnx",
                             "graphs.rec": tmp_path / "text" / "rec.onnx"}
    for name in ("cls", "rec"):
        assert found.manifest.graphs[name]["sha256"] == bundles.file_sha256(
            found.graph_path(name))
    with pytest.raises(KeyError):
        found.graph_path("det")


def test_a_missing_graph_is_refused_naming_it(tmp_path):
    found = _graphs_changed(tmp_path, lambda graphs: graphs.pop("rec"))
    with pytest.raises(BundleError, match=r"text/manifest.json.graphs.rec: missing; this task "
                       r"needs the graphs cls, rec"):
        bundles.read(found.path)
    manifest = tiny.ocr_manifest("text")
    del manifest["graphs"]
    with pytest.raises(BundleError, match=r"manifest.json.graphs.cls: missing"):
        bundles.parse_manifest(manifest)


def test_an_unknown_graph_is_refused_naming_it(tmp_path):
    found = _graphs_changed(tmp_path, lambda graphs: graphs.update(
        extra=dict(graphs["cls"])))
    with pytest.raises(BundleError, match=r"text/manifest.json.graphs.extra: this task runs no "
                       r"graph of that name \(its graphs: cls, rec\)"):
        bundles.read(found.path)
    single = tiny.manifest("b", "classify", graphs={"rec": tiny.ocr_manifest("t")["graphs"][
        "rec"]})
    with pytest.raises(BundleError, match=r"graphs.rec: this task runs no graph of that name "
                       r"\(its graphs: none\)"):
        bundles.parse_manifest(single)


@pytest.mark.parametrize(("change", "message"), [
    (lambda g: g["rec"].pop("sha256"), r"graphs.rec.sha256: "),
    (lambda g: g["rec"].update(sha256="XYZ"), r"graphs.rec.sha256: must be 64 lowercase hex"),
    (lambda g: g["rec"].update(file="../rec.onnx"), r"graphs.rec.file: must be a plain file"),
    (lambda g: g["cls"].update(precision="int4"), r"graphs.cls.precision: must be one of"),
    (lambda g: g["cls"].update(speed="fast"), r"graphs.cls.speed"),
    (lambda g: g.update(rec="rec.onnx"), r"graphs.rec"),
])
def test_each_graph_entry_is_checked_like_the_model(tmp_path, change, message):
    with pytest.raises(BundleError, match=message):
        bundles.read(_graphs_changed(tmp_path, change).path)


def test_a_graph_file_that_is_missing_or_a_link_is_refused_naming_the_field(tmp_path):
    found = tiny.ocr_bundle(tmp_path, "text")
    outside = tmp_path / "outside.onnx"
    (found.path / "rec.onnx").rename(outside)
    with pytest.raises(BundleError, match=r"text/rec.onnx: missing; manifest.json.graphs.rec."
                       r"file names it"):
        bundles.read(found.path)
    (found.path / "rec.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match=r"text/rec.onnx: is a symbolic link"):
        bundles.read(found.path)


def test_a_graph_whose_sha256_does_not_match_is_refused_at_load(tmp_path):
    found = tiny.ocr_bundle(tmp_path, "text")
    with open(found.graph_path("rec"), "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match=r"text/rec.onnx: sha256 is [0-9a-f]{64}, the "
                       r"manifest's graphs.rec.sha256 says [0-9a-f]{64}; the file is damaged"):
        bundles.read(found.path)
    assert bundles.read(found.path, verify=False).manifest.graphs["rec"]["file"] == "rec.onnx"


def test_a_single_graph_bundle_is_written_and_read_as_before(tmp_path):
    found = tiny.write_bundle(tmp_path, "b")
    assert "graphs" not in json.loads((found.path / "manifest.json").read_text())
    assert found.manifest.graphs == {}
    assert found.files() == {"model": found.model_path}
    assert sorted(p.name for p in found.path.iterdir()) == ["labels.txt", "manifest.json",
                                                          "model.onnx"]


@pytest.mark.parametrize("charset", [
    ["Y", "M", "C", "K"],
    [" ", "\u3000", "张", "é", "€", "𝔸", "\ufeffa", "#", "\\"],  # PP-OCR's sort of charset
])
def test_a_charset_round_trips_through_the_labels_file(tmp_path, charset):
    written = tiny.ocr_bundle(tmp_path, "text", labels=charset,
                              rec=tiny.ocr_rec_model(classes=len(charset) + 2))
    assert written.labels == charset
    assert bundles.read(written.path).labels == charset


@pytest.mark.parametrize("char", ["\u2028", "\x1c", "\x85", "\x0b", "\x0c"])
def test_a_charset_with_a_character_splitlines_splits_on_is_kept_or_refused(tmp_path, char):
    """One label a line is read with str.splitlines, which also ends lines at U+2028, U+001C,
    U+0085, VT and FF: such a label must come back as it is, or be refused naming its line,
    never turn silently into two empty labels (every later character would be read as the
    one after it)."""
    charset = ["Y", char, "K"]
    try:
        found = tiny.ocr_bundle(tmp_path, "text", labels=charset,
                                rec=tiny.ocr_rec_model(classes=len(charset) + 2))
    except BundleError as exc:
        assert "labels.txt: line 2 has a newline or control character" in exc.message
        return
    assert found.labels == charset


def _headed(folder, name="taught", means=None, labels=("a", "b", "unknown"), **output):
    """A classify bundle over the tiny embedder with a head of `means` (2 x 3 by default)."""
    import hashlib

    import numpy as np

    from appliance import head as heads

    means = np.eye(2, 3, dtype=np.float32) if means is None else means
    data = heads.Head(means, 0.5, 0.05).to_bytes()
    spec = {"labels": "labels.txt", "activation": "softmax", "top_k": 3, "head": "head.npz",
            "head_sha256": hashlib.sha256(data).hexdigest(), "unknown": "unknown", **output}
    scratch = folder / "embed.onnx"
    folder.mkdir(parents=True, exist_ok=True)
    import onnx

    onnx.save(tiny.embed_model(), scratch)
    return bundles.write(folder / name, tiny.manifest(name, "classify", output=spec), scratch,
                         labels=list(labels), extras={"head.npz": data})


def test_a_head_is_read_with_its_bundle(tmp_path):
    found = _headed(tmp_path)
    assert found.head is not None and found.head.classes == 2
    assert found.labels[-1] == "unknown"


def test_a_changed_head_fails_its_sha256(tmp_path):
    _headed(tmp_path)
    path = tmp_path / "taught" / "head.npz"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(BundleError, match=r"taught/head.npz: sha256 is .* the manifest's "
                                          r"output.head_sha256 says"):
        bundles.read(tmp_path / "taught")


def test_a_missing_head_is_named(tmp_path):
    _headed(tmp_path)
    (tmp_path / "taught" / "head.npz").unlink()
    with pytest.raises(BundleError, match=r"taught/head.npz: missing; manifest.json.output.head"):
        bundles.read(tmp_path / "taught")


def test_head_and_labels_must_agree(tmp_path):
    with pytest.raises(BundleError, match=r"2 class means need 3 labels, the classes' then "
                                          r"'unknown' \(output.unknown\); the labels file has 4"):
        _headed(tmp_path, labels=("a", "b", "c", "unknown"))
    with pytest.raises(BundleError, match="need 3 labels"):
        _headed(tmp_path, labels=("a", "b", "none"))


def test_a_head_sha256_is_required_and_only_with_a_head(tmp_path):
    with pytest.raises(BundleError, match="output.head_sha256: must be the head file's sha256"):
        _headed(tmp_path, head_sha256="")
    with pytest.raises(BundleError, match="output.head_sha256: given without a head file"):
        _headed(tmp_path, head="")
    with pytest.raises(BundleError, match="output.head: must be a plain file name"):
        _headed(tmp_path, head="../head.npz")


def test_an_oversized_head_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(bundles, "MAX_HEAD_BYTES", 100)
    with pytest.raises(BundleError, match="over the 100 byte limit for a head"):
        _headed(tmp_path)


def test_a_head_that_is_not_a_head_is_refused(tmp_path):
    import numpy as np

    with pytest.raises(BundleError, match="taught/head.npz: is not a head|means has shape"):
        _headed(tmp_path, means=np.zeros((0, 3), np.float32))


def test_the_bundle_folders_of_a_models_directory(tmp_path):
    assert bundles.folders(tmp_path / "nope") == []
    for name in ("b", "a", ".staging", ".a.last-good"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("not a bundle")
    assert [p.name for p in bundles.folders(tmp_path)] == ["a", "b"]


def test_an_installed_bundle_is_named_after_its_folder(tmp_path):
    tiny.write_bundle(tmp_path, "tiny-classify")
    assert bundles.read_installed(tmp_path / "tiny-classify").name == "tiny-classify"
    (tmp_path / "tiny-classify").rename(tmp_path / "other")
    bundles.read(tmp_path / "other")  # a good bundle, but not the one the folder says
    with pytest.raises(BundleError, match="other/manifest.json.name: is 'tiny-classify' but "
                       "the folder is named differently; rename one"):
        bundles.read_installed(tmp_path / "other")


def test_a_swap_keeps_the_previous_version_and_a_cut_swap_is_recovered(tmp_path):
    models = tmp_path / "models"
    tiny.write_bundle(models, "m")
    new = tiny.write_bundle(tmp_path / "staging", "m", version="2.0.0").path
    bundles.swap_in(new, models / "m")
    assert bundles.read(models / "m").manifest.version == "2.0.0"
    assert bundles.read(bundles.kept_path(models / "m")).manifest.version == "0.0.1"
    assert bundles.recover(models) == []  # a whole swap: nothing to put back
    (models / "m").rename(tmp_path / "gone")  # cut between the two renames of a swap
    assert bundles.recover(models) == ["m"]
    assert bundles.read(models / "m").manifest.version == "0.0.1"
    assert [p.name for p in bundles.folders(models)] == ["m"]


def test_writing_over_a_bundle_leaves_one_folder(tmp_path):
    tiny.write_bundle(tmp_path, "m")
    tiny.write_bundle(tmp_path, "m", version="2.0.0")  # the tools' write: no runner to keep
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert bundles.read(tmp_path / "m").manifest.version == "2.0.0"
