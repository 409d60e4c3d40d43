"""What the default bundles' build searches on a given machine, from searches measured before.

The converter's INT8 search (tools/convert.py, tools/multigraph.py) tries MinMax, Percentile
and Entropy calibration and then rounds of keeping nodes in float, each candidate judged on
held-out photos. For the default bundles that search is the slowest part of a first build,
and two things measured here make most of it predictable:

- Entropy calibration never decided a default bundle: in every full build on this project's
  machines (two builds of all eight bundles, 2026-11-29), wherever Entropy was tried MinMax or
  Percentile had already scored as well (pose, faces, text's recogniser); it costs the most
  (36 s for pose, 79 s for the recogniser). The default build tries MinMax and Percentile.
- A graph whose every candidate failed the gate in a full search fails it again with the same
  float file, photos, onnxruntime and target: the gate is deterministic. Such a graph is
  listed below with the search that found it, and the build ships it in float without
  searching again; its report says so and why.

A plan never ships INT8 by itself: whatever ships in INT8 passed the gate on the building
machine. A plan applies only to the target and onnxruntime release it was measured with;
anywhere else (a Raspberry Pi is `arm64`) the whole search runs. `make models SEARCH=full`
(tools/default_models.py --search) ignores plans and runs every candidate.
"""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_METHODS = ("MinMax", "Percentile")


class Unsearched(NamedTuple):
    """A graph shipped in float without a search, and the measurement that says why."""

    target: str  # tools.quantization target ("x86-vnni", "arm64", ...)
    onnxruntime: str  # "MAJOR.MINOR" the search ran with
    reason: str


# (bundle, graph) -> why float ships without a search. "model" is a bundle's main graph.
UNSEARCHED: dict[tuple[str, str], list[Unsearched]] = {
    ("text", "rec"): [Unsearched(
        "x86-vnni", "1.32",
        "in the full search on x86-vnni with onnxruntime 1.32 (two builds, 2026-11-29, "
        "Intel Xeon @ 2.80GHz) no INT8 candidate kept the task's answers: MinMax read 0.9157 "
        "of the characters, Percentile 0.9706, Entropy 0.9157, and keeping 2, 35 or 69 nodes "
        "in float 0.9157, 0.9059 and 0.9098, against the gate's 0.98 (PP-OCRv4's recogniser "
        "loses characters to INT8 activations)")],
    ("faces", "model"): [Unsearched(
        "x86-vnni", "1.32",
        "in the full search on x86-vnni with onnxruntime 1.32 (2026-11-29, Intel Xeon @ "
        "2.80GHz) no INT8 candidate met the default build's faces gate (box F1 0.99 against "
        "float): MinMax 0.0137, Percentile 0.0115, Entropy 0.0137, and keeping 14, 18 or 24 "
        "nodes in float 0.9831, 0.9206 and 0.7436")],
}


def unsearched(bundle: str, target: str, onnxruntime: str) -> dict[str, str]:
    """The graphs of `bundle` that ship in float without a search on `target` with
    onnxruntime `onnxruntime` (a full version string), each with the reason for its report."""
    release = ".".join(onnxruntime.split(".")[:2])
    return {graph: plan.reason for (name, graph), plans in UNSEARCHED.items() if name == bundle
            for plan in plans if plan.target == target and plan.onnxruntime == release}
