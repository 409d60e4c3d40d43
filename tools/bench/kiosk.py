"""Frames per second of the gallery loop, and the latency from a frame's capture to its
display, for each default model: the folder camera (a new picture every frame) and the file
display (PNG frames), as in a headless installation.

    python tools/bench/kiosk.py [--seconds 10] [--size 1920x1080] [--models-dir models]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not this folder

from appliance import config
from appliance.hardware.cameras import FolderCamera
from appliance.hardware.displays import FileDisplay
from appliance.services import Services
from appliance.standalone import StandaloneLoop

MODELS = ("efficientnet-lite0", "lite0-embed", "sketch", "faces")


class TimedCamera:
    """A folder camera that notes when each frame was captured."""

    def __init__(self, camera) -> None:
        self.camera = camera
        self.captured: dict[int, float] = {}

    def read(self):
        frame = self.camera.read()
        self.captured.setdefault(frame[0], time.perf_counter())
        return frame

    def close(self) -> None:
        self.camera.close()


class TimedDisplay:
    """The file display, noting when each frame has been written."""

    def __init__(self, display, camera: TimedCamera, kiosk_ref: list) -> None:
        self.display = display
        self.size = display.size
        self.camera = camera
        self.kiosk_ref = kiosk_ref
        self.latencies: list[float] = []

    def show(self, image) -> None:
        self.display.show(image)
        seen = self.kiosk_ref[0]._seen
        if seen in self.camera.captured:
            self.latencies.append(time.perf_counter() - self.camera.captured.pop(seen))

    def close(self) -> None:
        self.display.close()


def photos_folder(folder: Path) -> Path:
    from tools import photos

    for name, data in photos.held_out()[:3] + photos.calibration()[:3]:
        (folder / name).write_bytes(data)
    return folder


def measure(services: Services, model: str, size: tuple[int, int], seconds: float,
            work: Path) -> dict[str, float]:
    services.registry.activate(model)
    camera = TimedCamera(FolderCamera(str(work / "photos"), 1e-6))
    ref: list = []
    display = TimedDisplay(FileDisplay(str(work / f"screen-{model}"), size, keep=5), camera, ref)
    kiosk = StandaloneLoop(services, camera, display)
    ref.append(kiosk)
    kiosk.status_until = 0.0
    kiosk.settings.max_fps = 1000.0
    kiosk.tick()  # warm
    display.latencies.clear()
    started, shown = time.perf_counter(), kiosk.shown
    while time.perf_counter() - started < seconds:
        kiosk.tick()
    elapsed = time.perf_counter() - started
    return {"fps": (kiosk.shown - shown) / elapsed,
            "latency_p50_ms": statistics.median(display.latencies) * 1000,
            "latency_p95_ms": sorted(display.latencies)[int(0.95 * len(display.latencies))]
            * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--models-dir", default="models")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "photos").mkdir()
        photos_folder(work / "photos")
        settings = config.load(env={}, overrides={"models.dir": args.models_dir,
                                                  "state.dir": str(work / "state")})
        with Services.build(settings, admin="bench") as services:
            services.start(background=False)
            print(f"| model | fps | capture to display p50 ms | p95 ms |  ({size[0]}x{size[1]}"
                  " file display, folder camera)")
            print("| --- | --- | --- | --- |")
            for model in MODELS:
                if model not in services.registry.runners():
                    continue
                r = measure(services, model, size, args.seconds, work)
                print(f"| {model} | {r['fps']:.1f} | {r['latency_p50_ms']:.0f} | "
                      f"{r['latency_p95_ms']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
