"""ocr: an image in, the lines of text read from it out (text, confidence, four corners).

Three graphs make one reading, as PaddleOCR's PP-OCR models do: the bundle's main graph finds
the text (a DB probability map over the picture), the `cls` graph says which lines are upside
down, the `rec` graph reads each line (CTC over the bundle's labels, one character a line).
The steps between them are in `appliance.tasks.textlines`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field
from appliance.tasks import textlines
from appliance.tasks.base import Context, Option, Result, Task
from appliance.tasks.preprocess import Geometry

# A page holds a few hundred lines at most; past that, the rest of the picture is not read
# (each line costs a recogniser run: this bounds a request's time on a hostile picture).
MAX_LINES = 300
# Lines are cut from the decoded picture, kept up to this side: more detail than the
# detector's input, for small print.
READ_SIDE = 2000


class Ocr(Task):
    name = "ocr"
    summary = "the lines of text in the picture: text, confidence and four corners each"
    output = {
        "labels": Field(str, required=False, default="labels.txt"),
        "det_threshold": Field((int, float), required=False, default=0.3),
        "box_threshold": Field((int, float), required=False, default=0.5),
        "unclip_ratio": Field((int, float), required=False, default=1.6),
        "cls_threshold": Field((int, float), required=False, default=0.9),
        "min_confidence": Field((int, float), required=False, default=0.5),
        "tensor": Field(str, required=False, default=""),
    }
    needs_labels = True
    graphs = ("cls", "rec")
    varying_input = True  # the detector runs at each picture's own size, lines at their length
    options = (Option("min_confidence", float, "the lowest mean character confidence of a "
                      "line that is answered (0 to 1)", low=0.0, high=1.0,
                      default=lambda b: float(b.manifest.output["min_confidence"])),)
    answer = {
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "text": {"type": "string"}, "confidence": {"type": "number"},
            "box": {"type": "array", "description": "four [x, y] corners in the image's "
                    "pixels: top-left, top-right, bottom-right, bottom-left"}}},
            "description": "the lines read, in reading order"},
        "text": {"type": "string", "description": "the lines joined by newlines"}}
    # Characters alone miss a detector that splits a line in two (one stray letter in a
    # picture): the lines found must be the same too.
    gate = {"char_accuracy": 0.98, "same_lines": 0.95}

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        for key in ("det_threshold", "box_threshold", "cls_threshold", "min_confidence"):
            if not 0.0 <= spec[key] <= 1.0:
                return f"{key}: must be between 0 and 1"
        if not 1.0 <= spec["unclip_ratio"] <= 4.0:
            return "unclip_ratio: must be between 1 and 4"
        return None

    def decode_hint(self, spec) -> tuple[int, int]:
        # Lines are read from the decoded picture's own pixels: keep up to the detector's
        # largest side rather than the model's nominal input.
        return READ_SIDE, READ_SIDE

    def prepare(self, image: Image.Image, spec) -> tuple[np.ndarray, Geometry]:
        """The detector's input: shorter side to 736 (multiples of 32), BGR in [-1, 1]."""
        det = textlines.det_preprocess(image)
        height, width = det.tensor.shape[2:]
        tall = image.size[1] + 2 * det.pad_top
        scale_y = height / tall
        return det.tensor, Geometry(image.size, width / image.size[0], scale_y, 0.0,
                                    det.pad_top * scale_y)

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """Find the lines on the detector's map, turn and read each, in reading order.
        Raises ValueError when the picture or the other graphs are missing, or the
        recogniser's classes do not match the labels."""
        if ctx.image is None or ctx.graph is None:
            raise ValueError("ocr needs the picture and the bundle's cls and rec graphs")
        lines = read(ctx, np.asarray(ctx.output(outputs), np.float32))
        least = ctx.opts["min_confidence"]
        lines = [line for line in lines if line["confidence"] >= least]
        return Result(body={"lines": lines, "text": "\n".join(line["text"] for line in lines)})

    def draw(self, size, frame, body, output, backdrop) -> Image.Image:
        """The frame dimmed beside the text read from it, each line's box outlined."""
        from appliance import overlays

        return overlays.text_lines(size, frame, body.get("lines", []))

    def measure(self, reference, candidate, spec: Mapping[str, Any], size) -> dict[str, float]:
        """Character accuracy of the whole reading against the float models': each item is
        one picture's reading as `[encode(text)]`, since a text bundle is judged on what it
        reads, not on any one graph's tensors."""
        wrong = total = same = lines = 0
        for ref, got in zip(reference, candidate, strict=True):
            a, b = decode(ref[0]), decode(got[0])
            wrong += edit_distance(a, b)
            total += len(a)
            same += a == b
            lines += a.count("\n") == b.count("\n")
        count = max(len(reference), 1)
        return {"char_accuracy": max(0.0, 1.0 - wrong / total) if total else float(wrong == 0),
                "same_lines": lines / count, "pictures_equal": same / count,
                "characters": float(total)}


def read(ctx: Context, prob: np.ndarray) -> list[dict[str, Any]]:
    """Every line in `ctx.image` as {text, confidence, box}, box in the full picture's
    pixels. Raises ValueError for a map that is not (1, 1, H, W)."""
    if prob.ndim != 4 or prob.shape[:2] != (1, 1):
        raise ValueError(f"the detector gives a map of shape {prob.shape}, not (1, 1, H, W)")
    spec = ctx.bundle.manifest.output
    settings = textlines.Settings(det_thresh=spec["det_threshold"],
                                  box_thresh=spec["box_threshold"],
                                  unclip_ratio=spec["unclip_ratio"],
                                  cls_thresh=spec["cls_threshold"])
    image = ctx.image.convert("RGB")
    quads = textlines.lines_in(prob[0, 0], image.size, settings)[:MAX_LINES]
    if not quads:
        return []
    crops = [textlines.crop_quad(image, quad) for quad in quads]
    crops = textlines.orient(crops, _runner(ctx.graph, "cls", 2), settings.cls_thresh)
    charset = ["blank", *ctx.bundle.labels, " "]
    read_lines = textlines.recognise(crops, _runner(ctx.graph, "rec", len(charset)), charset)
    sx = ctx.geometry.source_size[0] / image.size[0]
    sy = ctx.geometry.source_size[1] / image.size[1]
    return [{"text": text, "confidence": round(conf, 4),
             "box": [[round(float(x) * sx, 1), round(float(y) * sy, 1)] for x, y in quad]}
            for quad, (text, conf) in zip(quads, read_lines, strict=True)]


def _runner(graph: Callable[[str, np.ndarray], list[np.ndarray]], name: str,
            classes: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Run graph `name`, checking its answer has `classes` scores per step; a model that
    disagrees with its labels would otherwise index past them."""
    def run(tensor: np.ndarray) -> list[np.ndarray]:
        outputs = graph(name, tensor)
        got = np.asarray(outputs[0])
        if got.shape[-1] != classes or got.shape[0] != tensor.shape[0]:
            raise ValueError(f"graph {name} answers shape {got.shape}: {tensor.shape[0]} "
                             f"rows of {classes} scores were expected ("
                             + ("one per label, plus the blank and the space)" if name == "rec"
                                else "upright and upside down)"))
        return outputs
    return run


def encode(text: str) -> np.ndarray:
    """A reading as an int32 array of code points (how the gate passes it as an output)."""
    return np.array([ord(c) for c in text], np.int32)


def decode(codes: np.ndarray) -> str:
    """The reading `encode` made."""
    return "".join(chr(int(c)) for c in np.asarray(codes).ravel())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
