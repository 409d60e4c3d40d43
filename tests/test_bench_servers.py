"""tools/bench/servers.py runs end to end on a tiny model: the appliance, the web floor and
the naive server really start, answer and are loaded; the figures are not asserted
(performance is measured by the tool, never by timed tests). The peers need their own
virtualenvs and are left to the tool itself."""

import json

import pytest

from tools.bench import servers as bench

pytestmark = pytest.mark.slow


def test_bench_runs_on_a_tiny_model(models_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = bench.main(["--model", str(models_dir / "tiny-classify"), "--servers",
                       "appliance,floor,naive", "--concurrency", "1,4", "--images", "small",
                       "--seconds", "0.3", "--warmup", "0.1", "--defaults", "", "--out",
                       str(out), "--variant", "batched:APPLIANCE_MODELS_MAX_BATCH=4",
                       "--compat", "", "--rounds", "2", "--round-seconds", "0.2"])
    assert code == 0
    report = json.loads((out / "bench.json").read_text())
    names = [s["name"] for s in report["servers"]]
    assert names == ["appliance", "web floor (Flask on the box's waitress, no model)",
                     "naive (Flask dev server)", "appliance (batched)"]
    for server in report["servers"]:
        assert "skipped" not in server, server.get("skipped")
        for c in ("1", "4"):
            run = server["runs"]["small"][c]
            assert run["ok"] > 0 and run["statuses"] == {"200": run["ok"]}
            assert run["p50_ms"] <= run["p99_ms"] and run["peak_rss_mb"] > 10
    bare = report["bare"]["small"]
    assert bare["latency"]["n"] >= 5 and bare["limit"]["throughput_rps"] > 0
    assert 0 < report["decode"]["ratio"] < 1  # the phone photo decodes at a reduced scale
    paired = report["paired"]
    assert len(paired["rounds"]) == 2 and paired["concurrency"] == 4
    for row in paired["rounds"]:
        assert row["box_p50_ms"] > 0 and row["floor_p50_ms"] > 0 and row["box_rps"] > 0
        assert row["vs_limit"] == row["box_rps"] / row["limit_rps"]
    assert paired["overhead"]["low"] <= paired["overhead"]["median"] <= \
        paired["overhead"]["high"]
    table = (out / "bench.md").read_text()
    assert "| appliance |" in table and "| bare limit (" in table and "| goal |" in table
    assert "c=4: box throughput / bare limit, median of 2 alternating rounds" in table
    assert (out / "bench.svg").read_text().startswith("<svg")
    assert "bench.json" in capsys.readouterr().out


def test_a_server_that_answers_the_wrong_label_fails_the_run(models_dir, tmp_path,
                                                              monkeypatch):
    monkeypatch.setattr(bench.bench_bare, "top_label", lambda folder, photo: "no-such-label")
    with pytest.raises(RuntimeError, match="without the label bare onnxruntime gives"):
        bench.main(["--model", str(models_dir / "tiny-classify"), "--servers", "appliance",
                    "--concurrency", "1", "--images", "small", "--seconds", "0.1",
                    "--warmup", "0", "--defaults", "", "--compat", "", "--rounds", "0",
                    "--out", str(tmp_path)])


def test_unknown_server_and_missing_model_are_usage_errors(models_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--model", str(models_dir / "tiny-classify"), "--servers", "ray"])
    assert "unknown server 'ray'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--model", str(tmp_path)])
    assert "no bundle there" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--model", str(models_dir / "tiny-classify"), "--compat", str(tmp_path)])
    assert f"--compat {tmp_path}: no bundle there" in capsys.readouterr().err


def test_home_and_camera_paths_run_against_bare_onnxruntime(models_dir, tmp_path):
    pytest.importorskip("zmq", reason="pyzmq is not installed (pip install pyzmq)")
    from tests import models as tiny

    crowd = tiny.write_crowd(tmp_path / "detect", "crowd", ["person", "car", "truck"])
    out = tmp_path / "out"
    assert bench.main(["--model", str(models_dir / "tiny-classify"), "--servers", "appliance",
                       "--concurrency", "1", "--images", "small", "--seconds", "0.3",
                       "--warmup", "0", "--defaults", "", "--compat", str(crowd.path),
                       "--compat-requests", "6", "--out", str(out)]) == 0
    compat = json.loads((out / "bench.json").read_text())["compat"]
    assert [h["in_flight"] for h in compat["detection"]] == [1, 4]
    assert all(h["statuses"] == {"200": 6} for h in compat["detection"])
    assert compat["zmq"]["calls"] > 0 and compat["bare_onnxruntime"]["runs"] == 6
    assert compat["ratios"]["zmq_p50_over_bare"] > 0
    assert "Frigate's zmq detector, tensor in and out" in (out / "bench.md").read_text()


def test_memory_and_start_up_of_named_bundles(models_dir):
    found = bench.measure_memory(models_dir, ("tiny-classify", "tiny-embed"),
                                 bench.photos()["small"]["jpeg"])
    assert found["models"] == ["tiny-classify", "tiny-embed"]
    assert found["rss_mb"] > 10 and 0 < found["ready_s"] < 60
    assert bench.measure_memory(models_dir, ("not-built",), b"") is None
