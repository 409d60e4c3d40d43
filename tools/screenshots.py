"""Screenshots of every gallery screen at 1920x1080 and 480x800, from the file display and
from /kiosk in headless Chromium (also at 800x480), for docs/screens/ and the README.

    python tools/screenshots.py [--out docs/screens] [--models-dir models]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not this folder

from PIL import Image

from appliance import config
from appliance.hardware.cameras import FolderCamera
from appliance.hardware.displays import FileDisplay
from appliance.services import Services
from appliance.standalone import StandaloneLoop

SIZES = ((1920, 1080), (480, 800))
KIOSK_SIZES = (*SIZES, (800, 480))  # /kiosk also on a small landscape panel
RESULTS = {"efficientnet-lite0": "chelsea", "sketch": "astronaut", "faces": "astronaut",
           "lite0-embed": "coffee", "objects": "chelsea", "cutout": "astronaut",
           "pose": "astronaut", "text": "sign"}


def photo(name: str, folder: Path) -> Path:
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    path = folder / f"{name}.jpg"
    if name == "sign":  # a sign on a wall, for the text bundle
        from tools.text_model import sign

        sign().save(path, quality=95)
    else:
        Image.fromarray(getattr(data, name)()).convert("RGB").save(path, quality=95)
    return folder


def save(image: Image.Image, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(out / f"{name}.jpg", "JPEG", quality=80, optimize=True)


def file_display_screens(services: Services, size: tuple[int, int], work: Path,
                         out: Path) -> None:
    """Each screen through the real loop and the file display."""
    tag = f"{size[0]}x{size[1]}"
    display = FileDisplay(str(work / f"screen-{tag}"), size, keep=3)
    for model, picture in RESULTS.items():
        services.registry.activate(model)
        camera = FolderCamera(str(photo(picture, work / "camera")), 60)
        kiosk = StandaloneLoop(services, camera, display)
        kiosk.status_until = 0.0
        save(kiosk.tick(), out, f"result-{model}-{tag}")
        if model == "efficientnet-lite0":
            save(screens_status(kiosk), out, f"status-{tag}")
            kiosk.capture()
            kiosk.frozen_until = 0.0
            kiosk.last_change -= services.settings.standalone.idle_s + 1
            kiosk.camera = FolderCamera(str(work / "camera"), 1e9)  # the same picture
            kiosk._seen = 0
            save(kiosk.tick(), out, f"attract-{tag}")
    broken = StandaloneLoop(services, FolderCamera(str(work / "unplugged"), 1), display)
    broken.status_until = 0.0
    save(broken.tick(), out, f"error-{tag}")


def teach_screens(models_dir: Path, work: Path, out: Path) -> None:
    """The teach screen through the real loop, after a few captures of crops of the
    photographs, on a copy of lite0-embed (nothing is taught in `models_dir`)."""
    from tools.bench.teach import crops

    models = work / "teach-models"
    shutil.copytree(models_dir / "lite0-embed", models / "lite0-embed")
    settings = config.load(env={}, overrides={"models.dir": str(models),
                                              "state.dir": str(work / "teach-state")})
    with Services.build(settings, admin="screenshots") as services:
        services.start(background=False)
        camera = work / "teach-camera"
        for size in SIZES:
            kiosk = StandaloneLoop(services, FolderCamera(str(camera), 1e-3),
                          FileDisplay(str(work / "teach-screen"), size, keep=3))
            session = kiosk.teach("mug-or-cat", ["cat", "mug", "rocket"])
            for k, (cls, count) in enumerate((("cat", 3), ("mug", 2), ("rocket", 1))):
                session.chosen = k
                for data in crops({"cat": "chelsea", "mug": "coffee"}.get(cls, cls),
                                  count if size == SIZES[0] else 0, seed=k):
                    _frame(camera, data, kiosk)
                    kiosk.capture()
            session.chosen = 1
            _frame(camera, crops("coffee", 1, seed=7)[0], kiosk)
            save(kiosk.tick(), out, f"teach-{size[0]}x{size[1]}")


def _frame(camera: Path, data: bytes, kiosk: StandaloneLoop) -> None:
    """`data` as the folder camera's only picture, drawn on the screen."""
    shutil.rmtree(camera, ignore_errors=True)
    camera.mkdir()
    (camera / f"{len(data)}.jpg").write_bytes(data)
    kiosk._teach_drawn = None
    kiosk.tick()


def screens_status(kiosk: StandaloneLoop) -> Image.Image:
    kiosk.show_status()
    screen = kiosk.tick()
    kiosk.status_until = 0.0
    return screen


def kiosk_page_screens(models_dir: Path, work: Path, out: Path) -> None:
    """/kiosk in headless Chromium, served by `appliance serve --standalone` with the display
    at its default size (1920x1080): each page gets frames drawn for its own screen."""
    from playwright.sync_api import sync_playwright

    from tools.live_server import CHROMIUM, CHROMIUM_ARGS, LiveServer

    camera = photo("chelsea", work / "kiosk-camera")
    for width, height in KIOSK_SIZES:
        env = {"APPLIANCE_STANDALONE_ENABLED": "true", "APPLIANCE_CAMERA_KIND": "folder",
               "APPLIANCE_CAMERA_PATH": str(camera), "APPLIANCE_DISPLAY_KIND": "kiosk",
               "APPLIANCE_MODELS_ACTIVE": "efficientnet-lite0"}
        with LiveServer(models_dir, work / f"state-{width}", env=env) as live, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(live.url + "/kiosk")  # while the models load: the status card
            page.wait_for_function(f"screen.naturalWidth === {width} && "
                                   f"screen.naturalHeight === {height}")
            loading = _screenshot(page)
            live.wait_ready()
            page.wait_for_timeout(1000)  # a frame with the models loaded
            ready = _screenshot(page)
            status = ready if ready.getpixel((4, 4)) == loading.getpixel((4, 4)) else loading
            save(status, out, f"kiosk-status-{width}x{height}")  # the card, if still up
            page.wait_for_timeout(9000)  # past the status card: the result
            save(_screenshot(page), out, f"kiosk-result-{width}x{height}")
            browser.close()


def _screenshot(page) -> Image.Image:
    import io

    return Image.open(io.BytesIO(page.screenshot())).convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/screens")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        settings = config.load(env={}, overrides={"models.dir": args.models_dir,
                                                  "state.dir": str(work / "state")})
        with Services.build(settings, admin="screenshots") as services:
            services.start(background=False)
            for size in SIZES:
                file_display_screens(services, size, work, out)
        teach_screens(Path(args.models_dir), work, out)
        if not args.no_browser:
            kiosk_page_screens(Path(args.models_dir).resolve(), work, out)
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
