"""Real photographs for calibration and held-out checks, from the scikit-image package (its
own data files: nothing is downloaded). Each photo also gives three crops, so a model sees
close-ups and off-centre framing as a camera would; the held-out photos are whole different
photographs from the calibration ones, never crops of them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# The held-out photos have clear subjects, so that a flip of the top label means something.
# Calibration must see natural colour photos too: calibrated on greys and textures alone,
# EfficientNet-Lite0 clipped real colours and flipped confident answers.
CALIBRATION = ("astronaut", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry",
               "retina", "coins", "page", "text", "gravel", "grass", "brick", "moon", "horse",
               "clock", "logo")
HELD_OUT = ("chelsea", "coffee", "camera")
CROPS = ((0.0, 0.0, 1.0, 1.0), (0.1, 0.1, 0.9, 0.9), (0.0, 0.0, 0.6, 0.6), (0.4, 0.4, 1.0, 1.0),
         (0.2, 0.0, 1.0, 0.8), (0.0, 0.2, 0.8, 1.0))


def _array(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    if name == "clock":
        return data.clock()
    return getattr(data, name)()


def _encoded(name: str) -> list[tuple[str, bytes]]:
    pixels = np.asarray(_array(name))
    if pixels.dtype != np.uint8:
        pixels = (pixels.astype(np.float64) * (255.0 / max(1, pixels.max()))).astype(np.uint8)
    image = Image.fromarray(pixels).convert("RGB")
    out = []
    for i, (x0, y0, x1, y1) in enumerate(CROPS):
        box = (int(x0 * image.width), int(y0 * image.height), int(x1 * image.width),
               int(y1 * image.height))
        buffer = io.BytesIO()
        image.crop(box).save(buffer, "JPEG", quality=92)
        out.append((f"{name}-{i}.jpg", buffer.getvalue()))
    return out


def calibration() -> list[tuple[str, bytes]]:
    """Calibration images as (name, JPEG bytes)."""
    return [item for name in CALIBRATION for item in _encoded(name)]


def held_out() -> list[tuple[str, bytes]]:
    """Held-out images as (name, JPEG bytes), from photographs calibration never sees."""
    return [item for name in HELD_OUT for item in _encoded(name)]


def chelsea_jpeg() -> bytes:
    """scikit-image's Chelsea the cat as a JPEG (451x300): the benchmarks' everyday photo."""
    buffer = io.BytesIO()
    Image.fromarray(_array("chelsea")).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write(folder: str | Path, which: str = "calibration") -> Path:
    """Write one set as JPEG files into `folder` (for `appliance-convert --images`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (calibration() if which == "calibration" else held_out()):
        (folder / name).write_bytes(data)
    return folder


if __name__ == "__main__":
    import sys

    write(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "calibration")


def _faces(indices: range, background: str) -> list[tuple[str, bytes]]:
    """LFW faces (scikit-image's lfw_subset, 25 px) enlarged onto a real photo's texture,
    at several sizes and places, as a detector would meet them."""
    from skimage import data

    faces = data.lfw_subset()
    ground = Image.fromarray(np.asarray(_array(background))).convert("RGB").resize((256, 256))
    out = []
    for n, index in enumerate(indices):
        side = (96, 128, 160)[n % 3]
        face = Image.fromarray((faces[index] * 255).astype(np.uint8)).convert("RGB")
        canvas = ground.copy()
        canvas.paste(face.resize((side, side), Image.BICUBIC),
                     ((n * 37) % (256 - side), (n * 53) % (256 - side)))
        buffer = io.BytesIO()
        canvas.save(buffer, "JPEG", quality=92)
        out.append((f"face-{index}.jpg", buffer.getvalue()))
    return out


def face_calibration() -> list[tuple[str, bytes]]:
    """Calibration for face detectors: the usual photos, faces, and non-faces (LFW 100-199)."""
    return calibration() + _faces(range(0, 40), "grass") + _faces(range(100, 116), "brick")


def face_held_out() -> list[tuple[str, bytes]]:
    """Held-out images with faces calibration never saw: the cameraman and other LFW faces."""
    return _encoded("camera") + _faces(range(60, 84), "gravel") + \
        _faces(range(170, 178), "gravel")
