"""The converter for bundles of several graphs (text: detect, orient, read): each graph gets
an INT8 decision of its own, judged by what the whole task answers.

For a bundle whose task runs more than one graph, no graph's tensors alone say whether INT8
is good enough: a recogniser that is off by a little may read the same words, a detector that
is off by a little may cut a line in two. So every graph is calibrated on the tensors the
all-float task itself feeds it on real pictures, and each candidate is judged by running the
whole task on held-out pictures (the candidate in place, every other graph in float) against
the all-float answers, with the task's own gate (`Task.measure`). A candidate ships when it
passes and its graph runs at least 5% faster than float here; the chosen combination is
judged together once more (a graph whose INT8 spoils it goes back to float). The bundle is
written in a scratch folder and renamed into place, with REPORT.md and report.json listing
every try per graph.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance import bundle as bundles
from appliance import config, tasks
from appliance.errors import ApplianceError
from appliance.sessions import create_session
from appliance.tasks.base import Context, Result
from tools import gate, latency, quantization
from tools.calibration import Reader, Sample, subsample
from tools.convert import Trial
from tools.errors import ConvertError

FASTER_BY = 0.05  # as tools/convert.py: less is within this machine's noise
MAIN = "model"  # the main graph's name in reports (the manifest's `model`)
# Calibration keeps every activation of every input in memory: a detector's input is a whole
# picture (736 px and more a side), a recogniser's a few lines 48 px high.
MAX_CALIBRATION = {MAIN: 12}
DEFAULT_MAX_CALIBRATION = 24
LATENCY_RUNS = 30
LATENCY_BUDGET_S = 20.0  # timing float against the passing candidates, to choose
REPORT_ONLY_S = 4.0  # timing float alone, for the report
PER_CHANNEL_OPSET = 13
MAX_FALLBACKS = 3  # as tools/convert.py's --max-fallbacks


def reading(task: str, result: Result) -> list[np.ndarray]:
    """What the gate compares for one picture: the task's answer as the 'outputs' its
    `measure` reads. Raises ConvertError for a task this converter cannot judge yet."""
    if task == "ocr":
        from appliance.tasks import ocr

        return [ocr.encode(result.body.get("text", ""))]
    raise ConvertError(f"task {task} has no whole-answer gate for several graphs: add it to "
                       "tools/multigraph.reading")


@dataclass
class Try(Trial):
    """One candidate for one graph, judged by the whole task: the converter's Trial, with the
    seconds it took to quantize and judge."""

    seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        return {**super().record(), "seconds": self.seconds}


@dataclass
class Graph:
    """One graph of the bundle while it is converted."""

    name: str  # MAIN or the manifest's graphs key
    source: Path  # the float file as given (shipped when float wins)
    pre: Path = Path()  # after onnxruntime's quantization pre-processing
    note: str = ""
    input_name: str = ""
    calibration: list[np.ndarray] = field(default_factory=list)
    probe: np.ndarray | None = None  # a held-out input, for latency
    tries: list[Try] = field(default_factory=list)
    float_latency: dict[str, float] = field(default_factory=dict)
    chosen: Try | None = None
    decision: str = ""

    @property
    def file(self) -> str:
        return "model.onnx" if self.name == MAIN else f"{self.name}.onnx"


Memo = dict[tuple[str, str, tuple[int, ...], bytes], list[np.ndarray]]


class Pipeline:
    """The bundle's task run on pictures with one onnxruntime session per graph, as the box
    runs it (its own prepare, the main graph, postprocess calling the others).

    With a `memo` shared between pipelines, a graph file given an input it has already run
    is not run again: judging one graph's candidate re-runs the float graphs before it on
    the same pictures with the same inputs (the text detector, 16 held-out pictures at
    several hundred ms each), and the final joint judgement repeats a candidate's own."""

    def __init__(self, probe: bundles.Bundle, paths: Mapping[str, Path],
                 memo: Memo | None = None) -> None:
        settings = config.load(env={}).models
        self.bundle = probe
        self.task = tasks.get(probe.manifest.task)
        self.paths = {name: str(path) for name, path in paths.items()}
        self.sessions = {name: create_session(path, settings) for name, path in paths.items()}
        self.opts = self.task.parse({}, probe)
        self.memo = memo

    def answer(self, picture: Image.Image,
               seen: dict[str, list[np.ndarray]] | None = None) -> Result:
        """The task's answer for one picture; `seen` collects each graph's inputs."""
        tensor, geometry = self.task.prepare(picture, self.bundle.manifest.input)
        outputs = self._run(MAIN, tensor, seen)
        names = [o.name for o in self.sessions[MAIN].get_outputs()]
        ctx = Context(self.bundle, geometry, self.opts, image=picture, names=names,
                      graph=lambda name, t: self._run(name, t, seen))
        return self.task.postprocess(outputs, ctx)

    def _run(self, name: str, tensor: np.ndarray,
             seen: dict[str, list[np.ndarray]] | None) -> list[np.ndarray]:
        session = self.sessions[name]
        if seen is not None:
            seen.setdefault(name, []).append(tensor)
        if self.memo is None:
            return session.run(None, {session.get_inputs()[0].name: tensor})
        key = (self.paths[name], tensor.dtype.str, tensor.shape,
               hashlib.blake2b(np.ascontiguousarray(tensor).data, digest_size=16).digest())
        if key not in self.memo:
            self.memo[key] = session.run(None, {session.get_inputs()[0].name: tensor})
        return [output.copy() for output in self.memo[key]]  # postprocess may write to it

    def readings(self, pictures: list[Image.Image]) -> list[list[np.ndarray]]:
        """Each picture's answer as the gate compares it."""
        name = self.bundle.manifest.task
        return [reading(name, self.answer(p)) for p in pictures]


def check_files(built: Any, task: str) -> None:
    """Raise ConvertError unless the task's graphs are all given and every file exists."""
    wanted = set(tasks.get(task).graphs)
    given = set(built.graphs)
    if given != wanted:
        missing, unknown = sorted(wanted - given), sorted(given - wanted)
        raise ConvertError(f"task {task} runs the graphs {', '.join(sorted(wanted))}; "
                           + (f"missing: {', '.join(missing)}" if missing else "")
                           + ("; " if missing and unknown else "")
                           + (f"unknown: {', '.join(unknown)}" if unknown else ""))
    for name, path in [(MAIN, Path(built.source)), *sorted(built.graphs.items())]:
        if not Path(path).is_file():
            raise ConvertError(f"graph {name}: its file {path} is missing: build it again "
                               "(nothing was written)")


def build(folder: Path, built: Any, quantize: bool = True,
          say: Callable[[str], None] = print, pictures: tuple[list, list] | None = None,
          faster_by: float = FASTER_BY, max_fallbacks: int = MAX_FALLBACKS,
          methods: tuple[str, ...] = quantization.METHODS,
          unsearched: Mapping[str, str] | None = None) -> bundles.Bundle:
    """Convert `built` (a tools.default_models.Built with `graphs`) into the bundle `folder`.

    `pictures` is (calibration, held-out) lists of RGB pictures, by default the task's own
    (text pictures for ocr); `faster_by` is how much faster than float a graph's INT8 must
    run to ship; `max_fallbacks` how many rounds of keeping nodes in float a graph whose
    every candidate failed gets; `methods` the calibration methods tried in turn;
    `unsearched` maps graphs that ship in float without a search to the reason (their
    report's decision, tools/plans.py). quantize=False ships every graph in float.
    Raises ConvertError (nothing written) for a missing graph file, pictures that never
    reach a graph, or a manifest that does not check out.
    """
    manifest = json.loads(json.dumps(built.manifest))
    check_files(built, manifest["task"])
    manifest["graphs"] = {name: {"file": f"{name}.onnx", "sha256": "0" * 64,
                                 "precision": "fp32"} for name in built.graphs}
    if not quantize:
        return _write(folder, manifest, built, {}, extras=built.extras)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.work.", dir=folder.parent))
    try:
        search = Search(faster_by, max_fallbacks, methods, dict(unsearched or {}))
        return Conversion(folder, built, manifest, say, work, search).run(
            pictures or default_pictures(manifest["task"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def default_pictures(task: str) -> tuple[list[Image.Image], list[Image.Image]]:
    """The calibration and held-out pictures a task's bundles are converted with."""
    if task == "ocr":
        from tools import text_model

        return text_model.pictures("calibration", 20), text_model.pictures("held-out", 16)
    raise ConvertError(f"no default pictures for task {task}: pass pictures=")


def _write(folder: Path, manifest: dict, built: Any, chosen: Mapping[str, Try],
           extras: Mapping[str, str | bytes],
           samples: Mapping[str, int] | None = None) -> bundles.Bundle:
    """Write the bundle with each graph's chosen INT8 file (calibrated on `samples[name]`
    inputs), or its float source. Raises ConvertError when the bundle does not check out."""
    files = {name: chosen[name].path if name in chosen else Path(path)
             for name, path in [(MAIN, built.source), *built.graphs.items()]}
    entries = {MAIN: manifest["model"], **manifest["graphs"]}
    for name, entry in entries.items():
        entry["precision"] = "int8" if name in chosen else "fp32"
        entry.pop("quantization", None)
        if name in chosen:
            entry["quantization"] = chosen[name].candidate.describe((samples or {})[name])
    try:
        return bundles.write(folder, manifest, files[MAIN], labels=built.labels,
                             extras=dict(extras),
                             graphs={n: p for n, p in files.items() if n != MAIN})
    except ApplianceError as exc:
        raise ConvertError(exc.message) from None


@dataclass(frozen=True)
class Search:
    """How the candidates are searched: see `build`."""

    faster_by: float = FASTER_BY
    max_fallbacks: int = MAX_FALLBACKS
    methods: tuple[str, ...] = quantization.METHODS
    unsearched: Mapping[str, str] = field(default_factory=dict)


class Conversion:
    """One multi-graph conversion in a scratch folder beside the bundle."""

    def __init__(self, folder: Path, built: Any, manifest: dict, say: Callable[[str], None],
                 work: Path, search: Search) -> None:
        self.folder, self.built, self.manifest, self.say = folder, built, manifest, say
        self.work, self.search = work, search
        self.name, self.task = manifest["name"], manifest["task"]
        self.limits = gate.thresholds(self.task)
        self.graphs = {MAIN: Graph(MAIN, Path(built.source)),
                       **{n: Graph(n, Path(p)) for n, p in built.graphs.items()}}
        self.combined: list[dict[str, Any]] = []
        self.memo: Memo = {}  # every graph run of this conversion, by file and input

    def run(self, pictures: tuple[list[Image.Image], list[Image.Image]]) -> bundles.Bundle:
        started = time.monotonic()
        calibration, held_out = pictures
        probe = self._probe_bundle()
        self.say(f"[1/5] {self.name}: pre-processing {len(self.graphs)} graphs")
        for graph in self.graphs.values():
            graph.pre = self.work / f"pre-{graph.name}.onnx"
            graph.note = quantization.preprocess(upgraded(graph.source, graph.pre), graph.pre)
        floats = {n: g.pre for n, g in self.graphs.items()}
        self.say(f"[2/5] {self.name}: running the float task on {len(calibration)} "
                 f"calibration and {len(held_out)} held-out pictures")
        self._record_inputs(probe, floats, calibration, held_out)
        reference = Pipeline(probe, floats, self.memo).readings(held_out)
        self.say(f"[3/5] {self.name}: trying candidates for target "
                 f"{quantization.resolve_target('auto')}, each judged by the whole task")
        for graph in self.graphs.values():
            self._search(graph, probe, floats, held_out, reference)
        self.say(f"[4/5] {self.name}: measuring each graph's latency on this machine")
        for graph in self.graphs.values():
            self._choose(graph)
        chosen = self._combine(probe, floats, held_out, reference)
        self.say(f"[5/5] {self.name}: writing the bundle")
        figures = self._report(chosen, len(calibration), len(held_out))
        extras = {"report.json": json.dumps(figures, indent=2) + "\n",
                  "REPORT.md": markdown(figures), **self.built.extras}
        result = _write(self.folder, self.manifest, self.built, chosen, extras,
                        {n: len(g.calibration) for n, g in self.graphs.items()})
        shipped = ", ".join(f"{n} {'int8' if n in chosen else 'fp32'}" for n in self.graphs)
        self.say(f"done in {time.monotonic() - started:.0f} s: {shipped}; report: "
                 f"{result.path.resolve() / 'REPORT.md'}")
        return result

    def _probe_bundle(self) -> bundles.Bundle:
        """The manifest checked as the box will, with the labels, for running the task."""
        try:
            parsed = bundles.parse_manifest(self.manifest, f"{self.name}/manifest.json")
        except ApplianceError as exc:
            raise ConvertError(exc.message) from None
        return bundles.Bundle(self.work, parsed, list(self.built.labels or []))

    def _record_inputs(self, probe, floats, calibration, held_out) -> None:
        """Each graph's calibration inputs (what the float task feeds it on the calibration
        pictures) and a held-out input to time it on. Raises ConvertError for a graph the
        pictures never reach."""
        pipeline = Pipeline(probe, floats, self.memo)
        seen: dict[str, list[np.ndarray]] = {}
        for picture in calibration:
            pipeline.answer(picture, seen)
        held: dict[str, list[np.ndarray]] = {}
        for picture in held_out:
            pipeline.answer(picture, held)
        for name, graph in self.graphs.items():
            if not seen.get(name) or not held.get(name):
                raise ConvertError(f"graph {name} never ran on the "
                                   f"{'calibration' if not seen.get(name) else 'held-out'} "
                                   "pictures: they must show what it reads (text, for ocr)")
            samples = [Sample(f"{name}-{i}", t) for i, t in enumerate(uniform(seen[name]))]
            limit = MAX_CALIBRATION.get(name, DEFAULT_MAX_CALIBRATION)
            graph.calibration = [s.tensor for s in subsample(samples, limit)]
            graph.probe = max(held[name], key=lambda t: t.size)
            graph.input_name = pipeline.sessions[name].get_inputs()[0].name

    def _search(self, graph: Graph, probe, floats, held_out, reference) -> None:
        """For each base candidate: MinMax, then Percentile, then Entropy until one passes;
        when none does, the output heads and then more and more of the most damaging nodes
        stay in float (up to max_fallbacks rounds), as tools/convert.py does."""
        if graph.name in self.search.unsearched:
            self.say(f"      {graph.name}: not searched (tools/plans.py)")
            return
        reader = Reader(graph.input_name, [Sample(str(i), t)
                                           for i, t in enumerate(graph.calibration)])
        judged = (probe, floats, held_out, reference)
        for base in quantization.candidates("auto"):
            failed = None
            for method in self.search.methods:
                trial = self._try(graph, quantization.with_method(base, method), reader, judged)
                if trial.verdict.passed:
                    break
                failed = failed or trial
            else:
                self._fall_back(graph, failed, reader, judged)

    def _fall_back(self, graph: Graph, failed: Try, reader: Reader, judged) -> None:
        if self.search.max_fallbacks <= 0:
            return
        import onnx

        heads = quantization.output_heads(onnx.load(str(graph.pre)).graph)
        ranked = quantization.sensitive_nodes(graph.pre, failed.path, reader, self.work)
        step = max(1, len(ranked) // 20)
        for round_number in range(self.search.max_fallbacks):
            groups = ranked[:step * (2 ** round_number) // 2] if round_number else []
            exclude = tuple(dict.fromkeys([*heads, *(n for group in groups for n in group)]))
            candidate = quantization.Candidate(**{**failed.candidate.__dict__,
                                                  "exclude": exclude})
            trial = self._try(graph, candidate, reader, judged)
            if trial.verdict.passed or len(groups) >= len(ranked):
                return

    def _try(self, graph: Graph, candidate: quantization.Candidate, reader: Reader,
             judged) -> Try:
        """Quantize `graph` with `candidate` and judge the whole task with it in place."""
        probe, floats, held_out, reference = judged
        began = time.monotonic()
        path = self.work / f"{graph.name}-{len(graph.tries)}.onnx"
        quantization.quantize(graph.pre, path, candidate, reader)
        try:
            verdict = self._judge(probe, {**floats, graph.name: path}, held_out, reference)
        except ApplianceError as exc:  # onnxruntime cannot load or run the candidate
            verdict = gate.Verdict(False, {k: 0.0 for k in self.limits}, self.limits,
                                   [exc.message.splitlines()[0][:300]])
        seconds = round(time.monotonic() - began, 1)
        trial = Try(candidate, verdict, path, note=verdict.reason(), seconds=seconds)
        graph.tries.append(trial)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in verdict.metrics.items())
        self.say(f"      {graph.name} {candidate.label}: "
                 f"{'pass' if verdict.passed else 'fail'} ({shown}; {seconds:g} s)")
        return trial

    def _judge(self, probe, paths, held_out, reference) -> gate.Verdict:
        candidate = Pipeline(probe, paths, self.memo).readings(held_out)
        return gate.judge(self.task, reference, candidate, probe.manifest.output, self.limits,
                          probe.manifest.input.size)

    def _choose(self, graph: Graph) -> None:
        """Time float and the passing candidates on a held-out input, then decide."""
        passing = [t for t in graph.tries if t.verdict.passed]
        paths = {"float": graph.pre, **{str(i): t.path for i, t in enumerate(passing)}}
        # With nothing to choose between, float's time is for the report only: a short look.
        figures = latency.measure(paths, graph.probe, graph.input_name, runs=LATENCY_RUNS,
                                  budget_s=LATENCY_BUDGET_S if passing else REPORT_ONLY_S)
        for i, trial in enumerate(passing):
            trial.p50_ms, trial.p95_ms = figures[str(i)]["p50_ms"], figures[str(i)]["p95_ms"]
        graph.float_latency = figures["float"]
        if graph.name in self.search.unsearched:
            graph.decision = f"Float ships without a search: {self.search.unsearched[graph.name]}."
        else:
            graph.chosen, graph.decision = choose(graph.tries, graph.float_latency["p50_ms"],
                                                  self.search.faster_by)
        self.say(f"      {graph.name}: {graph.decision}")

    def _combine(self, probe, floats, held_out, reference) -> dict[str, Try]:
        """Judge the chosen INT8 graphs together; while they fail, the one whose own try
        scored lowest goes back to float."""
        chosen = {n: g.chosen for n, g in self.graphs.items() if g.chosen is not None}
        while chosen:
            paths = {**floats, **{n: t.path for n, t in chosen.items()}}
            verdict = self._judge(probe, paths, held_out, reference)
            self.combined.append({"int8": sorted(chosen), "passed": verdict.passed,
                                  "metrics": verdict.metrics, "reason": verdict.reason()})
            self.say(f"      together ({', '.join(sorted(chosen))} in INT8): "
                     f"{'pass' if verdict.passed else 'fail'} ({verdict.reason()})")
            if verdict.passed:
                return chosen
            worst = min(chosen, key=lambda n: _score(chosen[n].verdict, self.limits))
            graph = self.graphs[worst]
            graph.chosen.note = "passed alone, but failed the gate with the others in INT8"
            graph.decision = (f"Float ships: its INT8 passed alone but the chosen graphs "
                              f"together failed the gate ({verdict.reason()}).")
            graph.chosen = None
            del chosen[worst]
        return chosen

    def _report(self, chosen: Mapping[str, Try], n_calib: int, n_held: int) -> dict[str, Any]:
        graphs = {}
        for name, g in self.graphs.items():
            shipped = chosen[name].path if name in chosen else g.source
            graphs[name] = {
                "file": g.file, "precision": "int8" if name in chosen else "fp32",
                "label": chosen[name].candidate.label if name in chosen else "float",
                "decision": g.decision, "float": g.float_latency,
                "p50_ms": chosen[name].p50_ms if name in chosen else g.float_latency["p50_ms"],
                "timed_on": list(g.probe.shape) if g.probe is not None else [],
                "calibration_inputs": len(g.calibration), "preprocess": g.note,
                "sizes": {"fp32": g.source.stat().st_size, "shipped": shipped.stat().st_size},
                "trials": [t.record() for t in g.tries]}
        return {"name": self.name, "task": self.task,
                "target": quantization.resolve_target("auto"),
                "machine": f"{platform.machine()}, {latency.cpu_name()}",
                "gate": self.limits, "calibration_pictures": n_calib,
                "held_out_pictures": n_held, "graphs": graphs, "combined": self.combined}


def uniform(tensors: list[np.ndarray]) -> list[np.ndarray]:
    """The inputs one by one (batches split) and cut to the smallest shape among them, from
    the top-left: onnxruntime's Percentile and Entropy calibration stack every input's
    activations into one array, which fails when shapes differ (a detector's picture follows
    its aspect, a recogniser's batch its widest line). A cut keeps real content, where
    padding would add values the box never feeds (the recogniser's own padding stays)."""
    single = [t[i:i + 1] for t in tensors for i in range(t.shape[0])]
    least = np.min([t.shape for t in single], axis=0)
    return [np.ascontiguousarray(t[tuple(slice(0, int(n)) for n in least)]) for t in single]


def upgraded(source: Path, dest: Path) -> Path:
    """`source`, or a copy at `dest` converted to opset 13 when it is older: per-channel
    weights need DequantizeLinear's `axis`, which opset 13 brought (PaddleOCR's graphs are
    opset 11 and 12)."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(source))
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if version >= PER_CHANNEL_OPSET:
        return source
    onnx.save(version_converter.convert_version(model, PER_CHANNEL_OPSET), str(dest))
    return dest


def _score(verdict: gate.Verdict, limits: Mapping[str, float]) -> float:
    return min(verdict.metrics[k] / v if v else verdict.metrics[k] for k, v in limits.items())


def choose(tries: list[Try], float_p50: float,
           faster_by: float = FASTER_BY) -> tuple[Try | None, str]:
    """The fastest try that passed the gate if it beats float's p50 by `faster_by`, else
    None; and the decision in words."""
    passing = sorted((t for t in tries if t.verdict.passed and t.p50_ms is not None),
                     key=lambda t: t.p50_ms)
    if not passing:
        last = tries[-1].verdict.reason() if tries else "none tried"
        return None, f"Float ships: no INT8 candidate kept the task's answers ({last})."
    for trial in passing:
        trial.note = "passed the gate, measured"
    best = passing[0]
    if best.p50_ms > float_p50 * (1 - faster_by):
        best.note = "passed the gate but is not faster than float"
        return None, (f"Float ships: the best INT8 candidate ({best.candidate.label}) kept "
                      f"the answers but ran {best.p50_ms:.2f} ms p50 against float's "
                      f"{float_p50:.2f} ms; INT8 must be at least {faster_by:.0%} faster.")
    best.note = "chosen: fastest within the gate"
    return best, (f"INT8 ships: {float_p50 / best.p50_ms:.2f}x faster than float "
                  f"({best.p50_ms:.2f} ms against {float_p50:.2f} ms p50) and the whole "
                  f"task within the gate ({best.verdict.reason()}).")


def markdown(report: Mapping[str, Any]) -> str:
    """REPORT.md: what shipped per graph, the combination's verdict, every try per graph."""
    gate_keys = list(report["gate"])
    lines = [f"# {report['name']}: conversion report", "",
             f"- task: {report['task']}; target: {report['target']}; machine: "
             f"{report['machine']}",
             f"- calibration pictures: {report['calibration_pictures']}; held-out pictures: "
             f"{report['held_out_pictures']} (different photographs and words)",
             "- every candidate is judged by the whole task's answers on the held-out "
             "pictures, with the other graphs in float, against the all-float answers",
             "", "| graph | shipped | float p50 ms | shipped p50 ms | float size | "
             "shipped size |", "| --- | --- | --- | --- | --- | --- |"]
    for name, g in report["graphs"].items():
        lines.append(f"| {name} (`{g['file']}`) | {g['precision']} ({g['label']}) | "
                     f"{g['float']['p50_ms']:.2f} | {g['p50_ms']:.2f} | "
                     f"{_mb(g['sizes']['fp32'])} | {_mb(g['sizes']['shipped'])} |")
    lines += ["", "## Together", ""]
    if not report["combined"]:
        lines.append("No graph shipped in INT8, so nothing was judged together.")
    for step in report["combined"]:
        lines.append(f"- {', '.join(step['int8'])} in INT8: "
                     f"{'pass' if step['passed'] else 'fail'} ({step['reason']})")
    for name, g in report["graphs"].items():
        lines += ["", f"## {name}: what was tried", "", g["decision"], "",
                  f"Timed on an input of shape {g['timed_on']}; calibrated on "
                  f"{g['calibration_inputs']} of its inputs; pre-processing: {g['preprocess']}.",
                  "", "| settings | gate | " + " | ".join(gate_keys) + " | p50 ms | result |",
                  "| --- | --- | " + " | ".join("---" for _ in gate_keys) + " | --- | --- |"]
        for trial in g["trials"]:
            values = " | ".join(f"{trial['metrics'].get(k, float('nan')):.4g}"
                                for k in gate_keys)
            p50 = f"{trial['p50_ms']:.2f}" if trial.get("p50_ms") is not None else "-"
            lines.append(f"| {trial['label']} | {'pass' if trial['passed'] else 'fail'} | "
                         f"{values} | {p50} | {trial['note']} |")
    gate_text = ", ".join(f"{k} ≥ {v:g}" for k, v in report["gate"].items())
    lines += ["", f"Gate: {gate_text}, of the whole task against the all-float task."]
    return "\n".join(lines) + "\n"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
