"""Teaching with the real embedder (lite0-embed): the time from the last example to the
model answering, with 10, 100 and 500 examples; held-out accuracy on small class sets made
from scikit-image's photographs (random crops and flips); memory added per taught model.

    python tools/bench/teach.py [--sizes 10,100,500] [--repeats 5] [--models-dir models]
        [--ui]

Everything runs in this process through the Flask app (no network): one "last example" is
the POST of the photo (decode, embed, store, refit, write the bundle, swap it in) followed
by the first inference on the taught model. The teach screen's capture-to-refit is the
capture button's action on the StandaloneLoop (folder camera, file display) until the refit serves,
and until the screen showing the new count is drawn. `--ui` also times the upload page in
headless Chromium against a real server process, beside the same two requests over HTTP.
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
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

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


def teach_screen(sizes: list[int], repeats: int, models_dir: Path) -> None:
    """The teach screen: a capture (the button's action) until the refit serves, and until
    the screen with the new count is drawn."""
    from appliance.hardware.cameras import FolderCamera
    from appliance.hardware.displays import FileDisplay
    from appliance.standalone import StandaloneLoop

    print("teach screen: capture to refit served (and to the new screen drawn)")
    for size in sizes:
        with tempfile.TemporaryDirectory() as state:
            folder, services, _ = box(models_dir, Path(state))
            try:
                seed_examples(services, "bench", size - repeats - 1)
                camera = folder / "camera"
                camera.mkdir()
                photos = crops("chelsea", repeats + 1, seed=98)
                kiosk = StandaloneLoop(services, FolderCamera(str(camera), 0.001),
                              FileDisplay(str(folder / "screen"), (800, 480)))
                kiosk.teach("bench", [])
                kiosk.teaching.chosen = kiosk.teaching.classes.index("chelsea")
                fits, screens_ms = [], []
                for k, data in enumerate(photos):
                    (camera / f"{k:03d}.jpg").write_bytes(data)
                    time.sleep(0.002)  # the folder camera's next frame
                    kiosk.tick()
                    started = time.perf_counter()
                    kiosk.capture()
                    fitted = time.perf_counter()
                    kiosk.tick()
                    if k:  # the first fit of a new model is an install
                        fits.append((fitted - started) * 1000)
                        screens_ms.append((time.perf_counter() - started) * 1000)
                    (camera / f"{k:03d}.jpg").unlink()
                examples = services.teacher.describe("bench")["examples"]
                print(f"  {examples:4d} examples: {min(fits):6.0f}-{max(fits):6.0f} ms "
                      f"(median {statistics.median(fits):.0f}); with the new screen "
                      f"{min(screens_ms):.0f}-{max(screens_ms):.0f} ms")
            finally:
                services.close()
                shutil.rmtree(folder, ignore_errors=True)


def upload_page(repeats: int, models_dir: Path) -> None:
    """The upload page in headless Chromium: a photo dropped on a class until the page has
    refreshed (POST, the class's ids and thumbnails, the model cards), then a photo dropped
    on the page until its labels show; beside them the same POST and infer over HTTP."""
    from playwright.sync_api import sync_playwright

    from tests.test_web import CHROMIUM, CHROMIUM_ARGS
    from tools.live_server import LiveServer, request

    print("upload page (Chromium, real server): drop on a class until the page is updated, "
          "+ drop a photo until the labels show; the same two requests over HTTP")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        shutil.copytree(models_dir / "lite0-embed", tmp_path / "models" / "lite0-embed")
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "admin-token").write_text(ADMIN + "\n")
        photos = {cls: crops(cls, 2 * repeats + 4, seed=k) for k, cls in enumerate(OBJECTS[:2])}
        files = {}
        for cls, datas in photos.items():
            for k, data in enumerate(datas):
                files[cls, k] = tmp_path / f"{cls}-{k}.jpg"
                files[cls, k].write_bytes(data)
        with LiveServer(tmp_path / "models", tmp_path / "state") as live, \
                sync_playwright() as playwright:
            live.wait_ready()
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(live.url + "/")
            page.fill("#admin-token", ADMIN)
            page.fill("#teach-name", "bench")
            page.fill("#teach-class-names", ", ".join(photos))
            page.click("#teach-open")
            for cls in photos:  # 4 examples a class, then the measured ones
                page.set_input_files(f".teach-class[data-class='{cls}'] input",
                                     [str(files[cls, k]) for k in range(4)])
                page.wait_for_selector(f".teach-class[data-class='{cls}'][data-count='4']")
            updated, answered = [], []
            for k in range(repeats):
                count = 5 + k
                card = f".teach-class[data-class='chelsea'][data-count='{count}']"
                started = time.perf_counter()
                page.set_input_files(".teach-class[data-class='chelsea'] input",
                                     str(files["chelsea", 4 + k]))
                page.wait_for_selector(card)
                updated.append((time.perf_counter() - started) * 1000)
                page.evaluate("document.getElementById('output').textContent = ''")
                page.set_input_files("#file", str(files["coffee", 4 + k]))
                page.wait_for_selector(".pred")
                answered.append((time.perf_counter() - started) * 1000)
            browser.close()
            over_http = []
            for k in range(repeats):
                started = time.perf_counter()
                status = request("POST", f"{live.url}/v1/models/bench/examples/coffee",
                                 photos["coffee"][4 + repeats + k],
                                 {**AUTH, "Content-Type": "image/jpeg"})[0]
                assert status == 201
                assert request("POST", f"{live.url}/v1/models/bench/infer",
                               photos["chelsea"][4 + repeats + k],
                               {"Content-Type": "image/jpeg"})[0] == 200
                over_http.append((time.perf_counter() - started) * 1000)
    print(f"  page updated {min(updated):.0f}-{max(updated):.0f} ms, labels shown "
          f"{min(answered):.0f}-{max(answered):.0f} ms (median "
          f"{statistics.median(answered):.0f}); POST + infer over HTTP "
          f"{min(over_http):.0f}-{max(over_http):.0f} ms (about 10 examples)")


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
    parser.add_argument("--ui", action="store_true",
                        help="also time the upload page in headless Chromium")
    parser.add_argument("--only", choices=["last", "screen", "accuracy", "memory", "ui"])
    args = parser.parse_args(argv)
    if not (args.models_dir / "lite0-embed" / "manifest.json").is_file():
        print(f"no lite0-embed in {args.models_dir}: run `make models`", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = {"last": lambda: last_example(sizes, args.repeats, args.models_dir),
            "screen": lambda: teach_screen(sizes, args.repeats, args.models_dir),
            "accuracy": lambda: accuracy(args.models_dir, train=5, test=10),
            "memory": lambda: memory(args.models_dir, args.memory_models),
            "ui": lambda: upload_page(args.repeats, args.models_dir)}
    for name, run in runs.items():
        if args.only == name or (args.only is None and (name != "ui" or args.ui)):
            run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
