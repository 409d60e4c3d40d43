"""Teaching with the real embedder (lite0-embed): the time from the last example to the
model answering, with 10, 100 and 500 examples; held-out accuracy on small class sets made
from scikit-image's photographs (random crops and flips); memory added per taught model.

    python tools/bench_teach.py [--sizes 10,100,500] [--repeats 5] [--models-dir models]

Everything runs in this process through the Flask app (no network): one "last example" is
the POST of the photo (decode, embed, store, refit, write the bundle, swap it in) followed
by the first inference on the taught model.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not this folder

import numpy as np
from PIL import Image

from appliance import config
from appliance.api import create_app
from appliance.services import Services

ADMIN = "bench-teach-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
OBJECTS = ("chelsea", "coffee", "astronaut", "rocket")
TEXTURES = ("brick", "grass", "gravel")


def photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


def crops(name: str, count: int, seed: int) -> list[bytes]:
    """`count` random crops (40-80% of each side), half of them mirrored, as JPEG."""
    image, rng = photo(name), np.random.default_rng(seed)
    width, height = image.size
    out = []
    for _ in range(count):
        w, h = (int(s * rng.uniform(0.4, 0.8)) for s in (width, height))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = image.crop((x, y, x + w, y + h))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def box(models_dir: Path, state: Path):
    folder = Path(tempfile.mkdtemp(prefix="bench-teach-"))
    (folder / "models").mkdir()
    shutil.copytree(models_dir / "lite0-embed", folder / "models" / "lite0-embed")
    settings = config.load(env={}, overrides={"models.dir": str(folder / "models"),
                                              "state.dir": str(state)})
    services = Services.build(settings, admin=ADMIN)
    services.start(background=False)
    return folder, services, create_app(settings, services).test_client()


def add(client, name: str, cls: str, data: bytes) -> dict:
    response = client.post(f"/v1/models/{name}/examples/{cls}", data=data,
                           content_type="image/jpeg", headers=AUTH)
    assert response.status_code == 201, response.json
    return response.json


def infer(client, name: str, data: bytes) -> str:
    response = client.post(f"/v1/models/{name}/infer", data=data, content_type="image/jpeg")
    assert response.status_code == 200, response.json
    return response.json["predictions"][0]["label"]


def seed_examples(services, name: str, total: int) -> None:
    """`total` examples over OBJECTS, stored as a POST stores them but without a refit
    each (only the last examples' refits are measured)."""
    teacher = services.teacher
    embedder = teacher.embedder(None)
    meta = None
    per = -(-total // len(OBJECTS))
    stored = 0
    for k, cls in enumerate(OBJECTS):
        for data in crops(cls, per, seed=k):
            if stored == total:
                return
            if meta is None:
                meta = teacher._save_meta(name, None, embedder, None, None)
            teacher._store(name, cls, data, teacher._embed(embedder, data))
            stored += 1


def last_example(sizes: list[int], repeats: int, models_dir: Path) -> None:
    print("time from the last example to the model answering (POST example + first infer)")
    for size in sizes:
        with tempfile.TemporaryDirectory() as state:
            folder, services, client = box(models_dir, Path(state))
            try:
                seed_examples(services, "bench", size - repeats - 1)
                extra = crops("chelsea", repeats + 1, seed=99)
                add(client, "bench", "chelsea", extra[0])  # the first fit: an install
                times, fits = [], []
                for data in extra[1:]:
                    started = time.perf_counter()
                    body = add(client, "bench", "chelsea", data)
                    infer(client, "bench", data)
                    times.append((time.perf_counter() - started) * 1000)
                    fits.append(body["fit_ms"])
                examples = services.teacher.describe("bench")["examples"]
                print(f"  {examples:4d} examples: {min(times):6.0f}-{max(times):6.0f} ms "
                      f"(median {statistics.median(times):.0f}); of which refit+write+swap "
                      f"{min(fits):.0f}-{max(fits):.0f} ms")
            finally:
                services.close()
                shutil.rmtree(folder, ignore_errors=True)


def accuracy(models_dir: Path, train: int, test: int) -> None:
    print(f"held-out accuracy ({train} examples a class, {test} held-out crops a class)")
    for label, classes in (("objects", OBJECTS), ("textures", TEXTURES)):
        with tempfile.TemporaryDirectory() as state:
            folder, services, client = box(models_dir, Path(state))
            try:
                for k, cls in enumerate(classes):
                    for data in crops(cls, train, seed=k):
                        body = add(client, label, cls, data)
                right = total = 0
                for k, cls in enumerate(classes):
                    for data in crops(cls, test, seed=1000 + k):
                        right += infer(client, label, data) == cls
                        total += 1
                print(f"  {label} ({', '.join(classes)}): {right}/{total} = "
                      f"{right / total:.2f}; leave-one-out {body['report']['loo_accuracy']:.2f}")
            finally:
                services.close()
                shutil.rmtree(folder, ignore_errors=True)


def memory(models_dir: Path, count: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        folder, services, client = box(models_dir, Path(state))
        try:
            data = {cls: crops(cls, 2, seed=k) for k, cls in enumerate(OBJECTS[:2])}
            for cls, photos in data.items():  # warm every code path once
                add(client, "warm", cls, photos[0])
            infer(client, "warm", data["chelsea"][1])
            before = rss_mb()
            for i in range(count):
                for cls, photos in data.items():
                    add(client, f"m{i}", cls, photos[0])
                infer(client, f"m{i}", data["chelsea"][1])
            after = rss_mb()
            print(f"memory: {count} taught models added {after - before:.0f} MB of RSS, "
                  f"{(after - before) / count:.1f} MB each")
        finally:
            services.close()
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models-dir", type=Path, default=config.CHECKOUT / "models")
    parser.add_argument("--memory-models", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.models_dir / "lite0-embed" / "manifest.json").is_file():
        print(f"no lite0-embed in {args.models_dir}: run `make models`", file=sys.stderr)
        return 2
    last_example([int(s) for s in args.sizes.split(",")], args.repeats, args.models_dir)
    accuracy(args.models_dir, train=5, test=10)
    memory(args.models_dir, args.memory_models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
