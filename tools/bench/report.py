"""The benchmark's figures as a Markdown table, the goals with their measured ratios, and an
SVG chart (hand-drawn: no plotting dependency)."""

from __future__ import annotations

import html
from typing import Any

GOALS = {
    "overhead": 1.2,      # (box p50 - bare p50) / web floor p50, concurrency 1
    "vs_limit": 0.8,      # box throughput / bare limit, concurrency 16
    "vs_peers": 1.5,      # box throughput / best peer's, concurrency 16
    "tail": 2.0,          # box p99 / its own p50, concurrency 1
    "decode": 0.25,       # draft decode + preprocess / full decode + resize, phone photo
    "rss_mb": 200.0,      # three default bundles loaded
    "ready_s": 2.0,       # process start to ready
}


def _run(server: dict, image: str, concurrency: int) -> dict | None:
    return (server.get("runs") or {}).get(image, {}).get(str(concurrency))


def _server(report: dict, kind: str) -> dict | None:
    return next((s for s in report["servers"] if s["kind"] == kind and not s.get("skipped")),
                None)


def goals(report: dict, image: str = "small") -> list[dict[str, Any]]:
    """Each goal with its measured value, or None where a part was not measured."""
    box, floor = _server(report, "appliance"), _server(report, "floor")
    bare = report["bare"].get(image, {})
    top = max(report["concurrency"])
    out = []

    def add(name: str, value: float | None, target: float, higher_is_better: bool,
            spread: dict | None = None) -> None:
        met = None if value is None else (value >= target if higher_is_better
                                          else value <= target)
        out.append({"goal": name, "value": value, "target": target, "met": met}
                   | ({"low": spread["low"], "high": spread["high"]} if spread else {}))

    one, floor_one = box and _run(box, image, 1), floor and _run(floor, image, 1)
    overhead = None
    if one and floor_one and "latency" in bare:
        overhead = (one["p50_ms"] - bare["latency"]["p50_ms"]) / floor_one["p50_ms"]
    add("c=1: box p50 over the bare loop / web floor p50", overhead, GOALS["overhead"], False)
    add("c=1: box p99 / its own p50", one["p99_ms"] / one["p50_ms"] if one else None,
        GOALS["tail"], False)
    many = box and _run(box, image, top)
    limit = bare.get("limit", {}).get("throughput_rps")
    add(f"c={top}: box throughput / bare limit",
        many["throughput_rps"] / limit if many and limit else None, GOALS["vs_limit"], True)
    peers = [r["throughput_rps"] for s in report["servers"] if s["kind"] == "peer"
             and not s.get("skipped") and (r := _run(s, image, top))]
    add(f"c={top}: box throughput / best peer's",
        many["throughput_rps"] / max(peers) if many and peers else None, GOALS["vs_peers"],
        True)
    paired = report.get("paired")
    if paired:
        rounds = f"median of {paired['count']} alternating rounds"
        add(f"c=1: box p50 over the bare loop / web floor p50, {rounds}",
            paired["overhead"]["median"], GOALS["overhead"], False, paired["overhead"])
        add(f"c={paired['concurrency']}: box throughput / bare limit, {rounds}",
            paired["vs_limit"]["median"], GOALS["vs_limit"], True, paired["vs_limit"])
    decode = report.get("decode")
    add("phone photo: fast image path / full decode + resize",
        decode["ratio"] if decode else None, GOALS["decode"], False)
    memory = (report.get("memory") or {}).get("three")
    add("RSS with three default bundles, MB", memory["rss_mb"] if memory else None,
        GOALS["rss_mb"], False)
    add("process start to ready, s", memory["ready_s"] if memory else None, GOALS["ready_s"],
        False)
    return out


def to_markdown(report: dict) -> str:
    """The tables the README's Performance section carries."""
    machine = report["machine"]
    lines = [f"`{report['model']}` ({report['precision']}) on {machine['cpu']}, "
             f"{machine['cores']} cores, onnxruntime {machine['onnxruntime']}, Python "
             f"{machine['python']}; {report['seconds']:g} s per cell after "
             f"{report['warmup_s']:g} s of warm-up, client on the same machine.", ""]
    conc = report["concurrency"]
    top = max(conc)
    for image, info in report["images"].items():
        lines += [f"**{info['label']}** ({info['width']}x{info['height']} JPEG, "
                  f"{info['bytes'] / 1024:.0f} KB)", "",
                  "| server | c=1 p50 / p95 / p99 ms | "
                  + " | ".join(f"c={c} req/s" for c in conc)
                  + f" | c={top} p50 / p99 ms | peak RSS MB |",
                  "| --- | --- | " + " | ".join("---" for _ in conc) + " | --- | --- |"]
        lines += _bare_rows(report["bare"].get(image, {}), conc)
        for server in report["servers"]:
            lines.append(_server_row(server, image, conc))
        lines.append("")
    if report.get("compat"):
        lines += compat_rows(report["compat"])
    lines += ["| goal | target | measured | met |", "| --- | --- | --- | --- |"]
    for goal in goals(report):
        value = "not measured" if goal["value"] is None else f"{goal['value']:.2f}"
        if "low" in goal:
            value += f" ({goal['low']:.2f}-{goal['high']:.2f})"
        met = {True: "yes", False: "**no**", None: "-"}[goal["met"]]
        lines.append(f"| {goal['goal']} | {goal['target']:g} | {value} | {met} |")
    return "\n".join(lines) + "\n"


def compat_rows(compat: dict) -> list[str]:
    """Home and camera software's calls (tools/bench/compat.py's paths) against bare
    onnxruntime on the same model and the same 320x320 JPEG."""
    bare = compat["bare_onnxruntime"]["decode_prepare_run"]
    ratios = compat["ratios"]
    rows = [f"**Home and camera software** (`{compat['model']}`, Frigate's 320x320 frame; "
            "each call's p50 over bare onnxruntime's)", "",
            "| path | calls | p50 / p99 ms | over bare p50 |", "| --- | --- | --- | --- |",
            f"| bare onnxruntime (decode + preprocess + run, one loop) | "
            f"{compat['bare_onnxruntime']['runs']} | {bare['p50_ms']:.1f} / "
            f"{bare['p99_ms']:.1f} | 1.00 |"]
    for http in compat["detection"]:
        n = http["in_flight"]
        rows.append(f"| DeepStack `POST /v1/vision/detection`, {n} in flight, a connection "
                    f"each | {http['requests']} | {http['p50_ms']:.1f} / {http['p99_ms']:.1f} "
                    f"| {ratios[f'http_{n}_in_flight_p50_over_bare']:.2f} |")
    zmq = compat["zmq"]
    rows.append(f"| Frigate's zmq detector, tensor in and out ({zmq['calls_per_s']:.0f} "
                f"calls/s) | {zmq['calls']} | {zmq['p50_ms']:.1f} / {zmq['p99_ms']:.1f} | "
                f"{ratios['zmq_p50_over_bare']:.2f} |")
    return [*rows, ""]


def _bare_rows(bare: dict, conc: list[int]) -> list[str]:
    rows = []
    if "latency" in bare:
        lat = bare["latency"]
        cells = [f"{lat['throughput_rps']:.0f} (one loop)"] + ["-"] * (len(conc) - 1)
        rows.append(f"| bare onnxruntime loop (decode + preprocess + run) | {lat['p50_ms']:.1f}"
                    f" / {lat['p95_ms']:.1f} / {lat['p99_ms']:.1f} | " + " | ".join(cells)
                    + " | - | - |")
    if "limit" in bare:
        lim = bare["limit"]
        cells = ["-"] * (len(conc) - 1) + [f"{lim['throughput_rps']:.0f}"]
        rows.append(f"| bare limit ({lim['loops']} loops x 1 thread, together) | - | "
                    + " | ".join(cells) + " | - | - |")
    return rows


def _server_row(server: dict, image: str, conc: list[int]) -> str:
    if server.get("skipped"):
        reason = server["skipped"].splitlines()[0][:120]
        return f"| {server['name']} | skipped: {html.escape(reason)} |" + " |" * (len(conc) + 2)
    one, top = _run(server, image, 1), _run(server, image, max(conc))

    def triple(run: dict | None, keys=("p50_ms", "p95_ms", "p99_ms")) -> str:
        return " / ".join(f"{run[k]:.1f}" for k in keys) if run else "-"

    rates = [_run(server, image, c) for c in conc]
    cells = [f"{r['throughput_rps']:.0f}" + (f" ({_failures(r)})" if _failures(r) else "")
             if r else "-" for r in rates]
    rss = max((r["peak_rss_mb"] for r in rates if r), default=None)
    return (f"| {server['name']} | {triple(one)} | " + " | ".join(cells)
            + f" | {triple(top, ('p50_ms', 'p99_ms'))} | "
            + (f"{rss:.0f}" if rss is not None else "-") + " |")


def _failures(run: dict) -> str:
    bad = {k: v for k, v in run["statuses"].items() if k != "200"}
    parts = [f"{v} x {k}" for k, v in bad.items()]
    if run.get("errors"):
        parts.append(f"{run['errors']} connection errors")
    return ", ".join(parts)


def to_svg(report: dict, image: str = "small") -> str:
    """Two panels: throughput at the highest concurrency, and p50 latency at concurrency 1."""
    top = max(report["concurrency"])
    bare = report["bare"].get(image, {})
    rate = [("bare limit", bare.get("limit", {}).get("throughput_rps"), "#6e6e73")]
    lat = [("bare loop", bare.get("latency", {}).get("p50_ms"), "#6e6e73")]
    for server in report["servers"]:
        colour = "#c2410c" if server["kind"] == "appliance" else "#fdba74"
        many, one = _run(server, image, top), _run(server, image, 1)
        if server["kind"] != "floor":  # it runs no model: its rate would dwarf every bar
            rate.append((server["name"], many and many["throughput_rps"], colour))
        lat.append((server["name"], one and one["p50_ms"], colour))
    info = report["images"][image]
    title = (f"{report['model']} on {report['machine']['cpu']} ({report['machine']['cores']}"
             f" cores), {info['width']}x{info['height']} JPEG")
    parts, y = [], 30
    panel_rate, y = _panel(f"requests a second at concurrency {top} (longer is better)",
                           rate, "req/s", y)
    panel_lat, y = _panel("p50 latency at concurrency 1 (shorter is better)", lat, "ms", y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="760" height="{y + 10}" '
             f'font-family="sans-serif" font-size="13">',
             f'<text x="10" y="20" font-weight="bold">{html.escape(title)}</text>',
             *panel_rate, *panel_lat, "</svg>"]
    return "\n".join(parts) + "\n"


def _panel(heading: str, bars: list, unit: str, y: int) -> tuple[list[str], int]:
    width, row, left = 760, 26, 300
    top = max((v for _, v, _ in bars if v), default=1.0)
    parts = [f'<text x="10" y="{y + 16}" font-weight="bold">{html.escape(heading)}</text>']
    y += 24
    for label, value, colour in bars:
        parts.append(f'<text x="10" y="{y + 15}">{html.escape(label[:42])}</text>')
        if value:
            length = (width - left - 90) * value / top
            parts += [f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="16" '
                      f'fill="{colour}"/>',
                      f'<text x="{left + length + 6:.1f}" y="{y + 15}">{value:.1f} {unit}'
                      '</text>']
        else:
            parts.append(f'<text x="{left}" y="{y + 15}">not measured</text>')
        y += row
    return parts, y + 10
