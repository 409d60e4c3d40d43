"""The sketch bundle before and after, side by side: p50 of POST /v1/models/sketch/infer.

    python tools/bench/sketch.py --before OLD_MODELS --after models [--rounds 15]
        [--query line=2] [--save DIR]

OLD_MODELS holds the sketch as it was (`image-to-image`, HED at 320x320, stretched): build it
with `python tools/default_models.py --out OLD_MODELS --only sketch` in a checkout of commit
6c0cc27, the last that built it so. Each models folder is served by its own in-process app
(the whole request path but the socket: decoding, the engine, postprocessing, PNG
encoding); their requests alternate, photo by photo, so that a loaded machine slows both
alike. The photos are scikit-image's astronaut
(512x512), coffee (600x400) and chelsea (451x300), and a phone-sized 4000x3000 JPEG made
from coffee. Prints each photo's p50 for both and their ratio; `--save DIR` writes each
answer as DIR/{before,after}-PHOTO.png.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # the checkout, not this folder

SIDES = ("before", "after")


def photos() -> dict[str, bytes]:
    """JPEG bytes (quality 90) by name: three of scikit-image's photographs and a phone
    photo (4000x3000)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    images = {name: Image.fromarray(getattr(data, name)()).convert("RGB")
              for name in ("astronaut", "coffee", "chelsea")}
    images["phone"] = images["coffee"].resize((4000, 3000), Image.BICUBIC)
    out = {}
    for name, image in images.items():
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out[name] = buffer.getvalue()
    np.asarray(images["phone"])  # decoded once here, not inside the timed loop
    return out


def serve(stack: ExitStack, models: Path):
    """A Flask test client of an app serving `models`, its services closed with `stack`.
    Raises SystemExit when the folder has no sketch bundle."""
    from appliance import config
    from appliance.api import create_app
    from appliance.services import Services

    if not (models / "sketch" / "manifest.json").is_file():
        raise SystemExit(f"bench/sketch: {models} holds no sketch bundle")
    state = stack.enter_context(tempfile.TemporaryDirectory())
    settings = config.load(env={}, overrides={"models.dir": str(models), "state.dir": state})
    services = stack.enter_context(Services.build(settings))
    services.start(background=False)
    return create_app(settings, services).test_client()


def post(client, jpeg: bytes, query: str) -> tuple[float, bytes]:
    """One request: its time in ms and the answer. Raises RuntimeError on an error answer."""
    started = time.perf_counter()
    response = client.post(f"/v1/models/sketch/infer{query}",
                           data={"image": (io.BytesIO(jpeg), "photo.jpg")})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"sketch answered {response.status_code}: {response.data[:200]!r}")
    return elapsed, response.data


def run(clients: dict, jpegs: dict[str, bytes], rounds: int, queries: dict[str, str],
        save: Path | None) -> dict[str, dict[str, list[float]]]:
    """Times in ms by photo and side, requests alternating; one untimed request first."""
    times = {name: {side: [] for side in clients} for name in jpegs}
    for name, jpeg in jpegs.items():
        for side, client in clients.items():
            _, answer = post(client, jpeg, queries[side])
            if save:
                (save / f"{side}-{name}.png").write_bytes(answer)
        for _ in range(rounds):
            for side, client in clients.items():
                times[name][side].append(post(client, jpeg, queries[side])[0])
    return times


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a models folder")
    parser.add_argument("--after", type=Path, required=True, help="a models folder")
    parser.add_argument("--rounds", type=int, default=15, help="timed requests a photo each")
    parser.add_argument("--query", default="",
                        help="options for the after bundle, e.g. line=3")
    parser.add_argument("--save", type=Path, help="write the answers here")
    args = parser.parse_args(argv)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    queries = {"before": "", "after": f"?{args.query}" if args.query else ""}
    with ExitStack() as stack:
        clients = {side: serve(stack, getattr(args, side)) for side in SIDES}
        times = run(clients, photos(), args.rounds, queries, args.save)
    print(f"{'photo':<10} {'before p50':>11} {'after p50':>10} {'ratio':>6}")
    for name, sides in times.items():
        before, after = (statistics.median(sides[side]) for side in SIDES)
        print(f"{name:<10} {before:>8.0f} ms {after:>7.0f} ms {after / before:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
