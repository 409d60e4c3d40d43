"""The alternating rounds' ratios and their refusal of a server that fails: a real web floor
asked on a path it does not serve."""

import dataclasses

import pytest

from tools.bench import contenders, paired
from tools.bench.client import build_request
from tools.bench.servers import photos


def test_spread_is_the_median_and_the_range():
    assert paired.spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "low": 1.0, "high": 10.0}


def test_a_server_answering_anything_but_200_stops_the_rounds(models_dir, tmp_path):
    photo = photos()["small"]["jpeg"]
    running = contenders.start_answering(contenders.floor(), models_dir / "tiny-classify",
                                         tmp_path, photo)
    try:
        # A small body: the box's server, which the floor runs on, refuses a large one to a
        # route that takes none from its headers (413) before the app can say 404.
        lost = dataclasses.replace(running, request_for=lambda data: build_request(
            "/no-such-route", b"x", "image/jpeg"))
        with pytest.raises(RuntimeError, match="web floor answered {'404'"):
            paired._load(lost, photo, 1, 0.2)
        assert paired._load(running, photo, 2, 0.2)["ok"] > 0
    finally:
        running.stop()
