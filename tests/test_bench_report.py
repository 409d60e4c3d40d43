"""The benchmark's goals, table and chart from a report whose figures are made up."""

from tools.bench import report as bench_report


def _run(p50, rps, rss=100.0, statuses=None):
    return {"p50_ms": p50, "p95_ms": p50 * 1.2, "p99_ms": p50 * 1.5, "throughput_rps": rps,
            "statuses": statuses or {"200": 10}, "errors": 0, "peak_rss_mb": rss}


def _report(box_c1=4.0, box_c16=480.0, peer_c16=200.0):
    return {
        "model": "m", "precision": "int8", "seconds": 5, "warmup_s": 1,
        "machine": {"cpu": "Test CPU", "cores": 2, "onnxruntime": "1", "python": "3"},
        "concurrency": [1, 16],
        "images": {"small": {"label": "small photo", "width": 512, "height": 600,
                             "bytes": 75000}},
        "bare": {"small": {"latency": {"p50_ms": 3.0, "p95_ms": 3.1, "p99_ms": 3.2,
                                       "throughput_rps": 333.0, "n": 100},
                           "limit": {"loops": 2, "throughput_rps": 500.0}}},
        "servers": [
            {"name": "appliance", "kind": "appliance",
             "runs": {"small": {"1": _run(box_c1, 250), "16": _run(30, box_c16)}}},
            {"name": "floor", "kind": "floor",
             "runs": {"small": {"1": _run(1.0, 900), "16": _run(8, 2000)}}},
            {"name": "peer", "kind": "peer",
             "runs": {"small": {"1": _run(9.0, 100), "16": _run(80, peer_c16,
                                                               statuses={"200": 5,
                                                                         "503": 2})}}},
            {"name": "broken", "kind": "peer", "skipped": "could not build\nits venv"},
        ],
        "decode": {"fast_ms": 10.0, "full_ms": 50.0, "ratio": 0.2},
        "memory": {"three": {"rss_mb": 190.0, "ready_s": 0.7, "models": ["a", "b", "c"]}},
    }


def test_goals_met_and_missed():
    goals = {g["goal"]: g for g in bench_report.goals(_report())}
    overhead = goals["c=1: box p50 over the bare loop / web floor p50"]
    assert overhead["value"] == 1.0 and overhead["met"]
    assert goals["c=16: box throughput / bare limit"]["value"] == 0.96
    assert goals["c=16: box throughput / best peer's"]["value"] == 2.4
    missed = {g["goal"]: g for g in bench_report.goals(_report(box_c1=5.0, peer_c16=400))}
    assert missed["c=1: box p50 over the bare loop / web floor p50"]["met"] is False
    assert missed["c=16: box throughput / best peer's"]["met"] is False
    assert all(g["met"] for g in goals.values())


def test_alternating_rounds_give_the_speed_goals_with_their_range():
    report = _report()
    report["paired"] = {"count": 3, "concurrency": 16,
                        "overhead": {"median": 2.0, "low": 1.5, "high": 2.5},
                        "vs_limit": {"median": 0.81, "low": 0.7, "high": 0.9}}
    goals = {g["goal"]: g for g in bench_report.goals(report)}
    assert goals["c=1: box p50 over the bare loop / web floor p50, median of 3 alternating "
                 "rounds"] == {"goal": "c=1: box p50 over the bare loop / web floor p50, "
                               "median of 3 alternating rounds", "value": 2.0, "target": 1.2,
                               "met": False, "low": 1.5, "high": 2.5}
    assert goals["c=16: box throughput / bare limit, median of 3 alternating rounds"]["met"]
    assert "| 0.81 (0.70-0.90) | yes |" in bench_report.to_markdown(report)


def test_the_tail_goal_is_the_boxs_own_p99_over_its_p50():
    goals = {g["goal"]: g for g in bench_report.goals(_report())}
    assert goals["c=1: box p99 / its own p50"] == {
        "goal": "c=1: box p99 / its own p50", "value": 1.5, "target": 2.0, "met": True}
    report = _report()
    report["servers"][0]["runs"]["small"]["1"]["p99_ms"] = 4.0 * 2.5
    tail = {g["goal"]: g for g in bench_report.goals(report)}["c=1: box p99 / its own p50"]
    assert tail["value"] == 2.5 and tail["met"] is False


def test_home_and_camera_paths_are_a_table_against_bare():
    report = _report()
    report["compat"] = {
        "model": "objects", "bare_onnxruntime": {"runs": 300, "decode_prepare_run": {
            "p50_ms": 20.0, "p95_ms": 22.0, "p99_ms": 25.0}},
        "detection": [{"in_flight": 1, "requests": 300, "p50_ms": 24.0, "p99_ms": 30.0},
                      {"in_flight": 4, "requests": 300, "p50_ms": 60.0, "p99_ms": 80.0}],
        "zmq": {"calls": 900, "calls_per_s": 45.0, "p50_ms": 21.0, "p99_ms": 26.0},
        "ratios": {"http_1_in_flight_p50_over_bare": 1.2, "http_4_in_flight_p50_over_bare": 3.0,
                   "zmq_p50_over_bare": 1.05}}
    table = bench_report.to_markdown(report)
    assert "| bare onnxruntime (decode + preprocess + run, one loop) | 300 | 20.0 / 25.0 | " \
           "1.00 |" in table
    assert "`POST /v1/vision/detection`, 1 in flight, a connection each | 300 | 24.0 / 30.0 " \
           "| 1.20 |" in table
    assert "| Frigate's zmq detector, tensor in and out (45 calls/s) | 900 | 21.0 / 26.0 | " \
           "1.05 |" in table
    assert "Home and camera software" not in bench_report.to_markdown(_report())


def test_unmeasured_goals_are_none_not_failures():
    report = _report()
    del report["memory"], report["decode"]
    report["servers"] = report["servers"][:1]
    goals = {g["goal"]: g for g in bench_report.goals(report)}
    assert goals["c=16: box throughput / best peer's"] == {
        "goal": "c=16: box throughput / best peer's", "value": None, "target": 1.5,
        "met": None}


def test_markdown_rows_failures_and_skips():
    table = bench_report.to_markdown(_report())
    assert "Test CPU, 2 cores" in table
    assert "| appliance | 4.0 / 4.8 / 6.0 | 250 | 480 | 30.0 / 45.0 | 100 |" in table
    assert "| peer | 9.0 / 10.8 / 13.5 | 100 | 200 (2 x 503) |" in table
    assert "| broken | skipped: could not build |" in table
    assert "| bare limit (2 loops x 1 thread, together) | - | - | 500 | - | - |" \
        in table


def test_svg_has_a_bar_per_server():
    svg = bench_report.to_svg(_report())
    # Rates: bare limit, appliance, peer (no floor; "broken" has no bar); latencies: the
    # bare loop and four servers, "broken" again without a bar.
    assert svg.startswith("<svg") and svg.count("<rect") == 3 + 4
    assert "not measured" in svg
