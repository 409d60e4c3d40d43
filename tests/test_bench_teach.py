"""tools/bench/teach.py: its photographs and its refusal without lite0-embed."""

import io

from PIL import Image

from tools.bench import teach as bench_teach


def test_crops_are_jpeg_pieces_of_the_photograph():
    first = bench_teach.crops("coffee", 3, seed=1)
    assert first == bench_teach.crops("coffee", 3, seed=1)  # the same crops each run
    assert len(set(first)) == 3
    for data in first:
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and image.width <= 480 and image.height <= 320


def test_without_lite0_embed_it_says_so(tmp_path, capsys):
    assert bench_teach.main(["--models-dir", str(tmp_path)]) == 2
    assert "no lite0-embed in" in capsys.readouterr().err
