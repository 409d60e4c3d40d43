"""What the converter tells people: report.json, REPORT.md and an SVG chart (no plotting
library: a few rectangles are enough)."""

from __future__ import annotations

import html
import json
from typing import Any


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    """A readable report: the decision, the sizes, the latency and accuracy of every try."""
    chosen = report["chosen"]
    lines = [f"# {report['name']}: conversion report", "",
             f"**Shipped: {chosen['precision']}** ({chosen['label']}). {report['decision']}",
             "", "![latency and accuracy](report.svg)", "",
             f"- task: {report['task']}; target: {report['target']}; machine: "
             f"{report['machine']}",
             f"- calibration images: {report['calibration_images']}; held-out images: "
             f"{report['held_out_images']}",
             f"- float size: {_mb(report['sizes']['fp32'])}; shipped size: "
             f"{_mb(report['sizes']['shipped'])}",
             f"- float latency p50 {report['float']['p50_ms']:.2f} ms, p95 "
             f"{report['float']['p95_ms']:.2f} ms", f"- pre-processing: {report['preprocess']}",
             "", "## What was tried", "",
             "| settings | gate | " + " | ".join(report["gate"]) + " | p50 ms | result |",
             "| --- | --- | " + " | ".join("---" for _ in report["gate"]) + " | --- | --- |"]
    for trial in report["trials"]:
        values = " | ".join(f"{trial['metrics'].get(k, float('nan')):.4g}"
                            for k in report["gate"])
        latency = f"{trial['p50_ms']:.2f}" if trial.get("p50_ms") is not None else "-"
        verdict = "pass" if trial["passed"] else "fail"
        lines.append(f"| {trial['label']} | {verdict} | {values} | {latency} | "
                     f"{trial['note']} |")
    gate = ", ".join(f"{k} ≥ {v:g}" for k, v in report["gate"].items())
    lines += ["", f"Gate: {gate}, against the float model on the held-out images."]
    excluded = chosen.get("excluded_nodes") or []
    if excluded:
        lines += ["", "Nodes kept in float: " + ", ".join(f"`{n}`" for n in excluded)]
    return "\n".join(lines) + "\n"


def to_svg(report: dict[str, Any]) -> str:
    """Bars of p50 latency for float and each measured candidate, with its gate result."""
    bars = [("float (fp32)", report["float"]["p50_ms"], "#6e6e73", "reference")]
    for trial in report["trials"]:
        if trial.get("p50_ms") is not None:
            colour = "#c2410c" if trial["label"] == report["chosen"]["label"] else "#fdba74"
            bars.append((trial["label"], trial["p50_ms"], colour, _summary(trial)))
    width, row, left = 720, 34, 250
    top = max(b[1] for b in bars) or 1.0
    height = 50 + row * len(bars)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="13">',
             f'<text x="10" y="22" font-weight="bold">{html.escape(report["name"])}: p50 '
             'latency on this machine (shorter is faster)</text>']
    for i, (label, value, colour, note) in enumerate(bars):
        y = 40 + i * row
        length = (width - left - 170) * value / top
        parts += [f'<text x="10" y="{y + 16}">{html.escape(label)}</text>',
                  f'<rect x="{left}" y="{y + 4}" width="{length:.1f}" height="18" '
                  f'fill="{colour}"/>',
                  f'<text x="{left + length + 6:.1f}" y="{y + 17}">{value:.2f} ms · '
                  f'{html.escape(note)}</text>']
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _summary(trial: dict[str, Any]) -> str:
    first = next(iter(trial["metrics"].items()), None)
    return f"{first[0]} {first[1]:.3f}" if first else ""


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
