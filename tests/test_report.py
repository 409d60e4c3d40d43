from tools import report

REPORT = {
    "name": "m", "task": "classify", "target": "x86-vnni", "machine": "x86_64, test",
    "decision": "INT8 ships: 2.00x faster.", "preprocess": "quant_pre_process",
    "chosen": {"precision": "int8", "label": "U8S8 per-channel MinMax", "p50_ms": 1.0,
               "excluded_nodes": ["gap"]},
    "float": {"p50_ms": 2.0, "p95_ms": 2.5}, "gate": {"top1_agreement": 0.9},
    "calibration_images": 10, "held_out_images": 4,
    "sizes": {"fp32": 4_000_000, "shipped": 1_000_000},
    "trials": [{"label": "U8S8 per-channel MinMax", "passed": True, "p50_ms": 1.0,
                "metrics": {"top1_agreement": 1.0}, "note": "chosen"},
               {"label": "U8S8 per-channel Entropy", "passed": False, "p50_ms": None,
                "metrics": {"top1_agreement": 0.5}, "note": "below"}],
}


def test_markdown_says_what_shipped_and_what_was_tried():
    text = report.to_markdown(REPORT)
    assert "**Shipped: int8** (U8S8 per-channel MinMax). INT8 ships: 2.00x faster." in text
    assert "| U8S8 per-channel Entropy | fail | 0.5 | - | below |" in text
    assert "float size: 4.0 MB; shipped size: 1.0 MB" in text
    assert "Nodes kept in float: `gap`" in text


def test_svg_has_a_bar_per_measured_model():
    svg = report.to_svg(REPORT)
    assert svg.startswith("<svg") and svg.count("<rect") == 2
    assert "2.00 ms" in svg and "1.00 ms" in svg


def test_json_round_trips():
    import json

    assert json.loads(report.to_json(REPORT)) == REPORT
