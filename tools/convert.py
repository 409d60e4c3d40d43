"""The converter: any float model in, a verified bundle out (INT8 where it wins).

    appliance-convert MODEL.onnx --name NAME --task classify --images DIR [options]
    appliance-convert mypkg.nets:build --input-shape 1,3,224,224 --name NAME ...

Validate the model, pre-process it, calibrate with real images prepared by the box's own
code, try the target's quantization settings (MinMax, then Percentile, then Entropy), gate
each against the float model on held-out images, exclude the most sensitive nodes when the
gate fails (a bounded number of times), measure float and INT8 latency here, and ship INT8
only when it is both faster and within the gate; otherwise ship float and say why. The bundle
carries report.json, REPORT.md and report.svg. Nothing is half-written: the bundle is built
in a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    # Run as a script, this folder would be first on sys.path and its modules could shadow
    # installed packages (a `triton.py` here once hid the real triton from torch).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
import onnx

from appliance import bundle as bundles
from appliance import config, tasks
from appliance.errors import ApplianceError
from appliance.sessions import check_signature, create_session, input_dtype
from appliance.tasks.base import Context
from appliance.tasks.preprocess import Geometry
from tools import calibration, gate, latency, modelcheck, quantization, report, triton_export
from tools.errors import ConvertError
from tools.ingest import ingest

FASTER_BY = 0.05  # INT8 must beat float's p50 by 5%: less is within this machine's noise


@dataclass
class Options:
    """Everything one conversion needs."""

    source: str
    manifest: dict[str, Any]
    images: list[tuple[str, bytes]]
    out: Path
    held_out: list[tuple[str, bytes]] | None = None
    labels: list[str] | None = None
    target: str = "auto"
    gate: dict[str, float] = field(default_factory=dict)
    max_fallbacks: int = 3
    latency_runs: int = 60
    input_shape: tuple[int, ...] | None = None
    extras: dict[str, bytes | str] = field(default_factory=dict)
    keep_float: Path | None = None
    export_triton: Path | None = None
    methods: tuple[str, ...] = quantization.METHODS
    max_calibration: int = 64
    unsearched: str = ""  # why float ships without a search (tools/plans.py); "" searches


@dataclass
class Trial:
    """One candidate tried: its settings, gate verdict, latency and model file."""

    candidate: quantization.Candidate
    verdict: gate.Verdict
    path: Path
    p50_ms: float | None = None
    p95_ms: float | None = None
    note: str = ""

    def record(self) -> dict[str, Any]:
        return {"label": self.candidate.label, "passed": self.verdict.passed,
                "metrics": self.verdict.metrics, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
                "note": self.note, "settings": self.candidate.describe(0)}


class Converter:
    """Runs one conversion in a scratch folder beside the output (same file system)."""

    def __init__(self, options: Options, say: Callable[[str], None] = print) -> None:
        self.o = options
        self.say = say
        self.name = options.manifest.get("name", "")
        self.task = options.manifest.get("task", "")
        self.trials: list[Trial] = []

    def run(self) -> bundles.Bundle:
        """Convert; returns the installed bundle. Raises ConvertError (nothing written)."""
        single_graph(self.task)
        self.o.out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{self.name or 'convert'}.work.",
                                     dir=self.o.out))
        (work / "in").mkdir()  # the user's file keeps its name here, apart from ours
        try:
            return self._run(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, work: Path) -> bundles.Bundle:
        started = time.monotonic()
        self._step(1, "checking the model")
        draft = self.o.manifest.get("input", {})
        source = ingest(self.o.source, work / "in", self.o.input_shape,
                        draft.get("name", "input"), draft.get("dynamic_batch", True))
        float_model = modelcheck.load(source)
        manifest = self._manifest(float_model)
        spec = manifest.input
        self._check_runs(source, float_model, manifest)
        self._step(2, "preparing images with the box's preprocessing")
        calib, held = self._samples(spec)
        self._step(3, "pre-processing for quantization")
        pre = work / "pre.onnx"
        onnx.save(modelcheck.name_nodes(onnx.load(str(source))), str(pre))
        note = quantization.preprocess(pre, pre)
        gate_limits = gate.thresholds(self.task, self.o.gate)
        if self.o.unsearched:
            self._step(4, "no search: float ships (tools/plans.py)")
        else:
            self._step(4, "trying candidates for target "
                          f"{quantization.resolve_target(self.o.target)}")
            reference = _outputs(pre, held, spec.name)
            reader = calibration.Reader(spec.name, calib)
            for base in quantization.candidates(self.o.target):
                self._search(base, pre, reader, held, reference, manifest, gate_limits, work)
        self._step(5, "measuring latency on this machine")
        float_latency = self._measure(pre, held[0].tensor, spec.name)
        chosen, decision = self._choose(float_latency)
        self._step(6, "writing the bundle")
        result = self._package(chosen, decision, source, float_model, manifest, note,
                               float_latency, gate_limits, len(calib), len(held))
        self._finish(result, time.monotonic() - started)
        return result

    def _step(self, number: int, text: str) -> None:
        self.say(f"[{number}/6] {self.name}: {text}")

    def _manifest(self, model: onnx.ModelProto) -> bundles.Manifest:
        draft = json.loads(json.dumps(self.o.manifest))
        draft.setdefault("format", bundles.FORMAT)
        draft.setdefault("model", {"file": "model.onnx", "sha256": "0" * 64,
                                   "precision": "fp32"})
        draft["input"] = {**input_defaults(model), **draft.get("input", {})}
        try:
            manifest = bundles.parse_manifest(draft, f"{self.name or 'bundle'}/manifest.json")
        except ApplianceError as exc:
            message = exc.message.replace(": fix the manifest and install the bundle again", "")
            raise ConvertError(f"{message}: fix --manifest or the flags") from None
        self.o.manifest = manifest.raw
        if tasks.get(manifest.task).needs_labels and not self.o.labels:
            raise ConvertError(f"task {manifest.task} needs labels: pass --labels FILE "
                               "(one label per line)")
        return manifest

    def _check_runs(self, source: Path, model: onnx.ModelProto,
                    manifest: bundles.Manifest) -> None:
        settings = config.load(env={}).models
        try:
            session = create_session(source, settings)
        except ApplianceError as exc:
            raise modelcheck.session_error(source, model, exc.__cause__ or exc) from None
        probe = bundles.Bundle(source.parent, manifest, self.o.labels or [])
        try:
            check_signature(session, probe)
            self._probe_task(session, probe)
        except ApplianceError as exc:
            raise ConvertError(exc.message) from None

    def _probe_task(self, session, probe: bundles.Bundle) -> None:
        spec = probe.manifest.input
        shape = (1, 3, *spec.size) if spec.layout == "NCHW" else (1, *spec.size, 3)
        outputs = session.run(None, {spec.name: np.zeros(shape, input_dtype(probe))})
        task = tasks.get(probe.manifest.task)
        ctx = Context(probe, Geometry((spec.size[1], spec.size[0]), 1, 1),
                      task.parse({}, probe), names=[o.name for o in session.get_outputs()])
        try:
            task.postprocess(outputs, ctx)
        except Exception as exc:
            raise ConvertError(f"the model's outputs {[o.shape for o in outputs]} do not fit "
                               f"task {probe.manifest.task} ({exc}): check --task and the "
                               "output settings") from None
        if probe.manifest.task == "classify" and outputs[0].size != len(probe.labels):
            raise ConvertError(f"the model gives {outputs[0].size} scores but there are "
                               f"{len(probe.labels)} labels: pass the matching labels file")

    def _samples(self, spec: bundles.InputSpec):
        samples = calibration.prepare(self.o.images, self.task, spec, "calibration")
        held = None
        if self.o.held_out is not None:
            held = calibration.prepare(self.o.held_out, self.task, spec, "the held-out set")
        calib, held = calibration.split(samples, held)
        return calibration.subsample(calib, self.o.max_calibration), held

    def _search(self, base, pre, reader, held, reference, manifest, limits, work) -> None:
        best_failure: Trial | None = None
        for method in self.o.methods:
            trial = self._try(quantization.with_method(base, method), pre, reader, held,
                              reference, manifest, limits, work)
            if trial.verdict.passed:
                return
            best_failure = best_failure or trial
        self._fall_back(best_failure, pre, reader, held, reference, manifest, limits, work)

    def _fall_back(self, failed: Trial, pre, reader, held, reference, manifest, limits,
                   work) -> None:
        """Keep the output heads, then more and more of the most damaging nodes, in float."""
        if self.o.max_fallbacks <= 0:
            return
        heads = quantization.output_heads(onnx.load(str(pre)).graph)
        ranked = quantization.sensitive_nodes(pre, failed.path, reader, work)
        step = max(1, len(ranked) // 20)
        for round_number in range(self.o.max_fallbacks):
            groups = ranked[:step * (2 ** round_number) // 2] if round_number else []
            exclude = tuple(dict.fromkeys([*heads, *(n for group in groups for n in group)]))
            candidate = quantization.Candidate(**{**failed.candidate.__dict__,
                                                  "exclude": exclude})
            trial = self._try(candidate, pre, reader, held, reference, manifest, limits, work)
            if trial.verdict.passed or len(groups) >= len(ranked):
                return

    def _try(self, candidate, pre, reader, held, reference, manifest, limits, work) -> Trial:
        path = work / f"candidate-{len(self.trials)}.onnx"
        quantization.quantize(pre, path, candidate, reader)
        outputs = _outputs(path, held, manifest.input.name)
        verdict = gate.judge(self.task, reference, outputs, manifest.output, limits,
                             manifest.input.size)
        trial = Trial(candidate, verdict, path, note=verdict.reason())
        self.trials.append(trial)
        mark = "pass" if verdict.passed else "fail"
        shown = ", ".join(f"{k} {v:.4g}" for k, v in verdict.metrics.items())
        self.say(f"      {candidate.label}: {mark} ({shown})")
        return trial

    def _measure(self, pre: Path, tensor: np.ndarray, input_name: str) -> dict[str, float]:
        passing = [t for t in self.trials if t.verdict.passed]
        paths = {"float": pre, **{str(i): t.path for i, t in enumerate(passing)}}
        figures = latency.measure(paths, tensor, input_name, runs=self.o.latency_runs)
        for i, trial in enumerate(passing):
            trial.p50_ms = figures[str(i)]["p50_ms"]
            trial.p95_ms = figures[str(i)]["p95_ms"]
        return figures["float"]

    def _choose(self, float_latency: dict[str, float]) -> tuple[Trial | None, str]:
        passing = sorted((t for t in self.trials if t.verdict.passed), key=lambda t: t.p50_ms)
        if self.o.unsearched:
            return None, f"Float ships without a search: {self.o.unsearched}."
        if not passing:
            return None, ("Float ships: no INT8 candidate stayed within the accuracy gate "
                          f"({self.trials[-1].verdict.reason() if self.trials else 'none'}).")
        best = passing[0]
        limit = float_latency["p50_ms"] * (1 - FASTER_BY)
        for trial in passing:
            trial.note = "passed the gate, measured"
        if best.p50_ms > limit:
            best.note = "passed the gate but is not faster than float"
            return None, (f"Float ships: the best INT8 candidate ({best.candidate.label}) "
                          f"passed the gate but ran {best.p50_ms:.2f} ms p50 against float's "
                          f"{float_latency['p50_ms']:.2f} ms on this machine; INT8 must be at "
                          f"least {FASTER_BY:.0%} faster to ship.")
        best.note = "chosen: fastest within the gate"
        speedup = float_latency["p50_ms"] / best.p50_ms
        return best, (f"INT8 ships: {speedup:.2f}x faster than float "
                      f"({best.p50_ms:.2f} ms against {float_latency['p50_ms']:.2f} ms p50) "
                      f"and within the accuracy gate ({best.verdict.reason()}).")

    def _package(self, chosen, decision, source, float_model, manifest, note, float_latency,
                 limits, n_calib, n_held) -> bundles.Bundle:
        model_file = chosen.path if chosen else source
        data = json.loads(json.dumps(manifest.raw))
        data["model"] = {"file": "model.onnx", "sha256": "0" * 64,
                         "precision": "int8" if chosen else "fp32"}
        if chosen:
            data["model"]["quantization"] = chosen.candidate.describe(n_calib)
        data["created_by"] = {**data.get("created_by", {}), **_provenance(source, float_model)}
        figures = self._report(chosen, decision, source, model_file, float_latency, limits,
                               note, n_calib, n_held)
        extras = {"report.json": report.to_json(figures), "REPORT.md": report.to_markdown(figures),
                  "report.svg": report.to_svg(figures), **self.o.extras}
        if self.o.keep_float:
            self.o.keep_float.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.o.keep_float)
        return bundles.write(self.o.out / self.name, data, model_file, labels=self.o.labels,
                             extras=extras)

    def _report(self, chosen, decision, source, model_file, float_latency, limits, note,
                n_calib, n_held) -> dict[str, Any]:
        chosen_record = ({"precision": "int8", "label": chosen.candidate.label,
                          "excluded_nodes": list(chosen.candidate.exclude),
                          "p50_ms": chosen.p50_ms, "metrics": chosen.verdict.metrics}
                         if chosen else {"precision": "fp32", "label": "float (fp32)",
                                         "p50_ms": float_latency["p50_ms"]})
        return {"name": self.name, "task": self.task,
                "target": quantization.resolve_target(self.o.target),
                "machine": f"{platform.machine()}, {latency_cpu()}", "decision": decision,
                "chosen": chosen_record, "float": float_latency, "gate": limits,
                "preprocess": note, "calibration_images": n_calib, "held_out_images": n_held,
                "sizes": {"fp32": source.stat().st_size, "shipped": model_file.stat().st_size},
                "trials": [t.record() for t in self.trials]}

    def _finish(self, result: bundles.Bundle, seconds: float) -> None:
        name = result.name
        self.say(f"done in {seconds:.0f} s: {result.manifest.model['precision']} bundle in "
                 f"{result.path.resolve()} (report: {result.path.resolve() / 'REPORT.md'})")
        self.say(f"upload it: tar -czf {name}.tar.gz -C {result.path.parent} {name} && "
                 f"curl -T {name}.tar.gz -H \"Authorization: Bearer $ADMIN_TOKEN\" "
                 f"http://HOST:8080/v1/models/{name}")
        if self.o.export_triton:
            folder = triton_export.export(result, self.o.export_triton)
            self.say(f"Triton model repository written to {folder}")


def single_graph(task_name: str) -> None:
    """Check that a task's bundles hold one graph, the only kind this converter quantizes,
    gates and packages. Raises ConvertError naming the tool that builds the others."""
    try:
        graphs = tasks.get(task_name).graphs
    except KeyError:
        return  # the manifest's check names the unknown task and the known ones
    if graphs:
        raise ConvertError(f"task {task_name} runs {len(graphs) + 1} graphs (the main one, "
                           f"{', '.join(graphs)}) and this converter builds bundles of one: "
                           "build it with tools/multigraph.py")


def input_defaults(model: onnx.ModelProto) -> dict[str, Any]:
    """What the model itself says of its input: name, layout, size and a dynamic batch."""
    initializers = {t.name for t in model.graph.initializer}
    first = next(v for v in model.graph.input if v.name not in initializers)
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in first.type.tensor_type.shape.dim]
    found: dict[str, Any] = {"name": first.name, "layout": "NCHW", "color": "RGB",
                             "resize": "stretch"}
    if len(dims) == 4:
        found["dynamic_batch"] = dims[0] is None
        channels_last = dims[3] == 3 and dims[1] != 3
        found["layout"] = "NHWC" if channels_last else "NCHW"
        sides = dims[1:3] if channels_last else dims[2:4]
        if all(sides):
            found["size"] = sides
    return found


def latency_cpu() -> str:
    from tools.latency import cpu_name

    return cpu_name()


def _outputs(path: Path, samples, input_name: str) -> list[list[np.ndarray]]:
    """Every output tensor of the model for each sample."""
    session = create_session(path, config.load(env={}).models)
    return [session.run(None, {input_name: s.tensor}) for s in samples]


def _provenance(source: Path, model: onnx.ModelProto) -> dict[str, Any]:
    import onnxruntime

    facts = {"tool": "tools/convert.py", "onnx": onnx.__version__,
             "onnxruntime": onnxruntime.__version__,
             "source_sha256": bundles.file_sha256(source)}
    if modelcheck.opset(model):
        facts["opset"] = modelcheck.opset(model)
    return facts


def convert(options: Options, say: Callable[[str], None] = print) -> bundles.Bundle:
    """Run one conversion. Raises ConvertError with a one-line message naming the fix."""
    return Converter(options, say).run()


if __name__ == "__main__":
    from tools.convert_cli import main

    sys.exit(main())
