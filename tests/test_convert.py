"""The converter on tiny real conv nets: INT8 found, the gate failing and the fallback
succeeding, the float-wins decision, and bad input refused with nothing written."""

import json

import onnx
import pytest

from appliance import bundle as bundles
from appliance import config
from appliance.registry import Registry
from tests import models as tiny
from tools import convert_cli, photos
from tools.convert import FASTER_BY, Converter, Options, Trial, convert
from tools.errors import ConvertError
from tools.gate import Verdict
from tools.quantization import Candidate

pytestmark = pytest.mark.slow
LABELS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def images():
    return photos.calibration()[:24], photos.held_out()[:12]


def _options(tmp_path, model, images, **changes) -> Options:
    path = tmp_path / "float.onnx"
    onnx.save(model, path)
    calib, held = images
    base = dict(source=str(path), manifest=tiny.conv_manifest("net"), images=calib,
                held_out=held, out=tmp_path / "models", labels=LABELS, latency_runs=30)
    base.update(changes)
    return Options(**base)


def _report(result: bundles.Bundle) -> dict:
    return json.loads((result.path / "report.json").read_text())


def test_a_conv_net_quantizes_and_the_box_serves_it(tmp_path, images):
    result = convert(_options(tmp_path, tiny.conv_net(), images), say=lambda _: None)
    report = _report(result)
    first = report["trials"][0]
    assert first["label"].startswith("U8S8 per-channel MinMax")
    assert first["passed"] and first["metrics"]["top1_agreement"] >= 0.75
    precision = result.manifest.model["precision"]
    if precision == "int8":  # shipped only when faster by the margin
        assert report["chosen"]["p50_ms"] <= report["float"]["p50_ms"] * (1 - FASTER_BY)
        assert result.manifest.model["quantization"]["calibration"]["samples"] == 24
    else:
        assert report["decision"].startswith("Float ships")
    for name in ("REPORT.md", "report.svg", "labels.txt", "model.onnx"):
        assert (result.path / name).is_file()
    assert "What was tried" in (result.path / "REPORT.md").read_text()
    assert result.manifest.created_by["source_sha256"]
    settings = config.load(env={}, overrides={"models.dir": str(result.path.parent),
                                              "state.dir": str(tmp_path / "s")})
    with Registry(settings) as registry:
        registry.load_all()
        assert registry.ready and list(registry.runners()) == ["net"]


def test_the_gate_fails_then_keeping_nodes_float_passes(tmp_path, images):
    lines = []
    result = convert(_options(tmp_path, tiny.conv_net(outlier=True), images), say=lines.append)
    trials = _report(result)["trials"]
    assert [t["passed"] for t in trials[:3]] == [False, False, False]
    assert [t["label"].split()[2] for t in trials[:3]] == ["MinMax", "Percentile", "Entropy"]
    assert trials[3]["settings"]["excluded_nodes"] == ["fc"]  # first the output head alone
    fallback = next(t for t in trials[3:] if t["passed"])
    assert {"gap", "outlier_add"} <= set(fallback["settings"]["excluded_nodes"])
    assert any("nodes kept float: pass" in line for line in lines)
    if result.manifest.model["precision"] == "int8":
        assert "gap" in result.manifest.model["quantization"]["excluded_nodes"]


def test_an_unsearched_model_ships_float_with_the_plans_reason(tmp_path, images):
    # conv_net() passes the gate on its first candidate: left unsearched, nothing is tried.
    lines = []
    options = _options(tmp_path, tiny.conv_net(), images, unsearched="measured to fail here")
    result = convert(options, say=lines.append)
    report = _report(result)
    assert report["trials"] == [] and result.manifest.model["precision"] == "fp32"
    assert report["decision"] == "Float ships without a search: measured to fail here."
    assert report["float"]["p50_ms"] > 0
    assert any("no search: float ships" in line for line in lines)


def test_the_methods_option_limits_the_calibration_methods(tmp_path, images):
    options = _options(tmp_path, tiny.conv_net(outlier=True), images, max_fallbacks=0,
                       methods=("MinMax", "Percentile"))
    trials = _report(convert(options, say=lambda _: None))["trials"]
    assert [t["label"].split()[2] for t in trials] == ["MinMax", "Percentile"]


def test_no_fallback_means_float_ships(tmp_path, images):
    options = _options(tmp_path, tiny.conv_net(outlier=True), images, max_fallbacks=0)
    result = convert(options, say=lambda _: None)
    assert result.manifest.model["precision"] == "fp32"
    assert "no INT8 candidate stayed within the accuracy gate" in _report(result)["decision"]


def _trial(p50: float, passed: bool = True) -> Trial:
    verdict = Verdict(passed, {"top1_agreement": 1.0}, {"top1_agreement": 0.9})
    return Trial(Candidate("uint8", "int8"), verdict, path=None, p50_ms=p50)


def _choose(tmp_path, *trials):
    converter = Converter(Options(source="", manifest={}, images=[], out=tmp_path))
    converter.trials = list(trials)
    return converter._choose({"p50_ms": 10.0, "p95_ms": 11.0})


def test_int8_ships_when_faster_and_within_the_gate(tmp_path):
    chosen, decision = _choose(tmp_path, _trial(9.0), _trial(4.0))
    assert chosen.p50_ms == 4.0
    assert decision.startswith("INT8 ships: 2.50x faster than float")


def test_float_ships_when_int8_is_not_faster_by_the_margin(tmp_path):
    chosen, decision = _choose(tmp_path, _trial(9.6))
    assert chosen is None
    assert "passed the gate but ran 9.60 ms p50 against float's 10.00 ms" in decision


def test_float_ships_when_nothing_passes(tmp_path):
    chosen, decision = _choose(tmp_path, _trial(2.0, passed=False))
    assert chosen is None and "no INT8 candidate stayed within the accuracy gate" in decision


def _cli(tmp_path, *extra):
    folder = photos.write(tmp_path / "photos")
    model = tmp_path / "net.onnx"
    if not model.exists():
        onnx.save(tiny.conv_net(), model)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS))
    return ["--images", str(folder), "--name", "net", "--task", "classify", "--size", "32",
            "--resize", "stretch", "--scale", str(1 / 255), "--labels", str(labels),
            "--author", "Me", "--source", "tests", "--license", "MIT",
            "--out", str(tmp_path / "models"), *extra]


def test_cli_builds_a_bundle_and_a_triton_repository(tmp_path, capsys):
    argv = [str(tmp_path / "net.onnx"), *_cli(tmp_path, "--export-triton",
                                              str(tmp_path / "triton"))]
    assert convert_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "bundle in" in out and "curl -T net.tar.gz" in out
    assert bundles.read(tmp_path / "models" / "net").manifest.attribution["author"] == "Me"
    config_text = (tmp_path / "triton" / "net" / "config.pbtxt").read_text()
    assert 'backend: "onnxruntime"' in config_text and "dims: [ 3, 32, 32 ]" in config_text
    assert (tmp_path / "triton" / "net" / "1" / "model.onnx").is_file()


def _refused(tmp_path, capsys, argv, message):
    before = sorted(p.name for p in (tmp_path / "models").glob("*")) \
        if (tmp_path / "models").exists() else []
    assert convert_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("appliance-convert: error: ")
    assert message in err[0]
    after = sorted(p.name for p in (tmp_path / "models").glob("*")) \
        if (tmp_path / "models").exists() else []
    assert after == before, "something was left in models/"


def test_garbage_model_is_refused(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08garbage")
    _refused(tmp_path, capsys, [str(junk), *_cli(tmp_path)], "junk.onnx")


def test_too_new_opset_is_refused(tmp_path, capsys):
    model = tiny.conv_net()
    model.opset_import[0].version = 99
    path = tmp_path / "new.onnx"
    onnx.save(model, path)
    _refused(tmp_path, capsys, [str(path), *_cli(tmp_path)],
             "opset 99 is not supported by onnxruntime")


def test_no_readable_images(tmp_path, capsys):
    argv = [str(tmp_path / "net.onnx"), *_cli(tmp_path)]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    argv[argv.index("--images") + 1] = str(empty)
    _refused(tmp_path, capsys, argv, "no readable images for calibration")


def test_too_few_held_out_images(tmp_path, capsys):
    argv = [str(tmp_path / "net.onnx"), *_cli(tmp_path)]
    few = tmp_path / "few"
    few.mkdir()
    for name, data in photos.held_out()[:2]:
        (few / name).write_bytes(data)
    _refused(tmp_path, capsys, [*argv, "--held-out", str(few)],
             "only 2 held-out images; the accuracy gate needs at least 4")


def test_outputs_that_do_not_fit_the_task(tmp_path, capsys):
    argv = [str(tmp_path / "net.onnx"), *_cli(tmp_path)]
    labels = tmp_path / "labels.txt"
    argv[argv.index("--labels") + 1] = str(labels)
    _cli(tmp_path)
    labels.write_text("only\ntwo\n")
    _refused(tmp_path, capsys, argv, "the model gives 4 scores but there are 2 labels")


def test_manifest_that_does_not_match_the_model(tmp_path, capsys):
    argv = [str(tmp_path / "net.onnx"), *_cli(tmp_path)]
    argv[argv.index("--size") + 1] = "64"
    _refused(tmp_path, capsys, argv, "the manifest implies (1, 3, 64, 64)")


def test_missing_name(tmp_path, capsys):
    argv = [str(tmp_path / "net.onnx"), *_cli(tmp_path)]
    argv[argv.index("--name"):argv.index("--name") + 2] = []
    _refused(tmp_path, capsys, argv, "--name is required")


def test_unknown_gate_key(tmp_path, capsys):
    _refused(tmp_path, capsys, [str(tmp_path / "net.onnx"), *_cli(tmp_path), "--gate",
                                "psnr_db=30"], "--gate psnr_db: unknown for task classify")


def test_convert_error_type():
    assert ConvertError("x").exit_code == 2


def test_a_task_of_several_graphs_is_sent_to_the_multigraph_builder(tmp_path, capsys):
    det = tmp_path / "det.onnx"
    onnx.save(tiny.ocr_det_model(), det)
    argv = [str(det), *_cli(tmp_path)]
    argv[argv.index("--task") + 1] = "ocr"
    argv[argv.index("--images") + 1] = str(tmp_path / "no-such-folder")  # never read
    _refused(tmp_path, capsys, argv, "task ocr runs 3 graphs (the main one, cls, rec) and this "
             "converter builds bundles of one: build it with tools/multigraph.py")
    options = Options(source=str(det), manifest=tiny.ocr_manifest("text"), images=[],
                      out=tmp_path / "models")
    with pytest.raises(ConvertError, match="build it with tools/multigraph.py"):
        convert(options)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
