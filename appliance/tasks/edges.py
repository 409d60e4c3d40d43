"""edges: an edge detector's map drawn as crisp dark lines on white, at the photo's aspect.

The model runs at the photo's own aspect with at most the manifest's `input.size` in pixels
(its sides multiples of 16), so a wide photo gets a wide map instead of a squashed square.
Its map is resized to the answer's size and thinned there as HED's evaluation (BSDS500,
Dollar's edgesNms) thins it: the direction across each edge from the map's own second
derivatives, a pixel kept only where it is the largest across its edge; the kept strengths
of at least `output.ink` low that join one of at least its high (hysteresis) become ink,
from faint at low to black at high, and the `line` option draws each line that many pixels
wide. Numpy only: the box has no OpenCV or scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from appliance.schema import Field, list_of
from appliance.tasks.base import Context, Option, Result
from appliance.tasks.image_to_image import FORMAT, ImageToImage, output_size
from appliance.tasks.preprocess import Geometry, to_tensor

MULTIPLE = 16  # the model's sides: HED pools four times
DIRECTION_BLURS = 3  # [1, 2, 1] filters before the direction across an edge is taken
WIDEST = 2.0  # decode for photos up to 2:1 without losing the model's pixels
# (dx, dy) of one step across an edge whose normal is at 0, 45, 90 and 135 degrees.
STEPS = ((1, 0), (1, 1), (0, 1), (-1, 1))
LINE = Option("line", int, "line width in pixels: 1 is the thinned edge, more draws it "
              "bolder", default=2, low=1, high=6)


class Edges(ImageToImage):
    name = "edges"
    summary = ("an edge map drawn as thin dark lines on white (png or jpeg, or JSON with it "
               "in base64)")
    output = {
        **ImageToImage.output,
        "ink": Field(list, required=False, check=list_of((int, float), 2),
                     default=[0.1, 0.5]),  # [weakest drawn, black and strong]
    }
    options = (LINE, FORMAT)
    varying_input = True  # the photo's own aspect

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        """The map must be one grey plane and the ink's low below its high."""
        if spec["color"] != "gray":
            return "color: an edge map is gray"
        low, high = spec["ink"]
        if not 0 <= low < high:
            return "ink: [low, high] with 0 <= low < high"
        return None

    def decode_hint(self, spec) -> tuple[int, int]:
        side = math.ceil(math.sqrt(spec.size[0] * spec.size[1] * WIDEST))
        return side, side

    def prepare(self, image: Image.Image, spec) -> tuple[np.ndarray, Geometry]:
        """The photo resized to its own aspect within the input's pixels, as the tensor."""
        width, height = model_size(image.size, spec.size[0] * spec.size[1])
        resized = image.resize((width, height), Image.BILINEAR)
        geometry = Geometry(image.size, width / image.width, height / image.height)
        return to_tensor(resized, spec), geometry

    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """The map at the answer's size, thinned, inked and drawn `line` pixels wide.
        Raises ValueError when the output is not one plane."""
        spec = ctx.bundle.manifest.output
        edge_plane = edge_map(np.asarray(ctx.output(outputs)), spec)
        size = output_size(ctx.geometry.source_size, spec["max_side"])
        strength = np.asarray(Image.fromarray(edge_plane, "F").resize(size, Image.BICUBIC))
        # The direction across each edge is taken on the model's own (smaller) map.
        bins = Image.fromarray(normal_bins(edge_plane).view(np.uint8), "L")
        bins = np.asarray(bins.resize(size, Image.NEAREST)).view(np.int8)
        low, high = spec["ink"]
        kept = hysteresis(thin(strength, bins, least=low), low, high)
        ink = widen(inked(kept, low, high), ctx.opts["line"])
        pixels = np.rint(255.0 * (1.0 - ink) if spec["invert"] else 255.0 * ink)
        image = Image.fromarray(pixels.astype(np.uint8), "L")
        return Result(body={"width": image.width, "height": image.height}, image=image)


def model_size(source: tuple[int, int], pixels: int) -> tuple[int, int]:
    """(width, height) at `source`'s aspect with at most `pixels` pixels, each side a
    multiple of MULTIPLE (the shorter one MULTIPLE at least, the longer then cut to fit)."""
    scale = math.sqrt(pixels / (source[0] * source[1]))
    short, long = sorted(source)
    short_side = max(MULTIPLE, _down(short * scale))
    long_side = max(MULTIPLE, _down(min(long * scale, pixels / short_side)))
    return (short_side, long_side) if source[0] <= source[1] else (long_side, short_side)


def _down(length: float) -> int:
    return int(length) // MULTIPLE * MULTIPLE


def edge_map(tensor: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """The edge strengths (H, W) in [0, 1] as float32 from the model's output (batch of
    one). Raises ValueError when it is not a single plane."""
    plane = tensor[0] if tensor.ndim == 4 else tensor
    if plane.ndim == 3:
        if plane.shape[0 if spec["layout"] == "NCHW" else -1] != 1:
            raise ValueError(f"an edge map is one plane; the model's output is {tensor.shape}")
        plane = plane[0] if spec["layout"] == "NCHW" else plane[..., 0]
    low, high = spec["range"]
    return np.clip((plane.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def thin(strength: np.ndarray, bins: np.ndarray | None = None,
         least: float = 0.0) -> np.ndarray:
    """Non-maximum suppression: each pixel's strength where it is the largest across its
    edge, zero elsewhere (and where it is under `least`, not looked at). Across is along the
    normal (`bins`, from `normal_bins` of this map when not given), one pixel either way,
    interpolated on the diagonals as edgesNms does (a whole diagonal step would skip the
    ridge's other pixels and leave a staircase two wide). Of a flat ridge the first pixel is
    kept, so a line is one pixel wide."""
    smooth = blur(strength)  # a quantized model's flat ridge top gets one crest
    bins = normal_bins(smooth) if bins is None else bins
    height, width = strength.shape
    padded = np.pad(smooth, 1, mode="edge").ravel()
    found = np.flatnonzero(strength >= least) if least > 0 else np.arange(strength.size)
    where = found + (found // width) * 2 + width + 3  # each pixel's index in `padded`
    kind = bins.ravel()[found]
    keep = np.zeros(found.size, dtype=bool)
    for index, (dx, dy) in enumerate(STEPS):
        chosen = np.flatnonzero(kind == index)
        at = where[chosen]
        centre = padded[at]
        before, after = (across(padded, at, centre, dx * sign, dy * sign * (width + 2))
                         for sign in (-1, 1))
        keep[chosen] = (centre > before) & (centre >= after)
    out = np.zeros(strength.size, np.float32)
    out[found[keep]] = strength.ravel()[found[keep]]
    return out.reshape(height, width)


def across(padded: np.ndarray, at: np.ndarray, centre: np.ndarray, dx: int,
           down: int) -> np.ndarray:
    """The flat map `padded` one pixel from each index `at` in direction (dx, down / row):
    the pixel itself straight across, bilinear on a diagonal."""
    if dx == 0 or down == 0:
        return padded[at + dx + down]
    a = np.float32(np.sqrt(0.5))
    return ((1 - a) ** 2 * centre + a * (1 - a) * (padded[at + dx] + padded[at + down])
            + a * a * padded[at + dx + down])


def normal_bins(strength: np.ndarray) -> np.ndarray:
    """The direction across the edge at each pixel as an index into STEPS: where the
    smoothed map curves down most steeply (its Hessian's eigenvector of the smaller
    eigenvalue, at angle atan2(2 Dxy, Dxx - Dyy) / 2 + 90 degrees), to the nearest 45.
    Smoothed about as much as edgesNms smooths (its triangle of radius 4): a ridge's flat top
    a few pixels wide still gets one direction across it, and its line no gaps."""
    for _ in range(DIRECTION_BLURS):
        strength = blur(strength)
    m = np.pad(strength, 1, mode="edge")
    across = (m[1:-1, 2:] + m[1:-1, :-2]) - (m[2:, 1:-1] + m[:-2, 1:-1])  # Dxx - Dyy
    diagonal = 0.5 * ((m[2:, 2:] + m[:-2, :-2]) - (m[2:, :-2] + m[:-2, 2:]))  # 2 Dxy
    bins = np.where(across > 0, np.int8(2), np.int8(0))  # curving down along y, along x
    slanted = np.abs(diagonal) > np.abs(across)
    bins[slanted & (diagonal > 0)] = 3
    bins[slanted & (diagonal <= 0)] = 1
    return bins


def blur(image: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] / 4 filter each way (edges repeated)."""
    padded = np.pad(image, 1, mode="edge")
    rows = padded[:-2] + 2 * padded[1:-1] + padded[2:]
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) * np.float32(1 / 16)


def hysteresis(strength: np.ndarray, low: float, high: float) -> np.ndarray:
    """`strength` where a line of pixels of at least `low` joins it (8-connected) to a
    pixel of at least `high`, zero elsewhere: weak edges are kept as parts of strong ones,
    not as specks on their own (Canny's hysteresis)."""
    height, width = strength.shape
    found = np.flatnonzero(strength >= low)
    out = np.zeros(strength.size, np.float32)
    if found.size:
        labels = components(found + (found // width) * 2 + width + 3, width + 2)
        values = strength.ravel()[found]
        strong = np.zeros(found.size, dtype=bool)
        strong[labels[values >= high]] = True
        kept = found[strong[labels]]
        out[kept] = strength.ravel()[kept]
    return out.reshape(height, width)


def components(cells: np.ndarray, row: int) -> np.ndarray:
    """The 8-connected components of `cells` (sorted flat indices into a map `row` wide
    whose border holds none): for each cell, the position in `cells` of its component's
    first cell. Roots hung under smaller roots, then pointer jumping (Shiloach-Vishkin):
    a few rounds, even for long lines."""
    first, second = [], []
    for step in (1, row - 1, row, row + 1):  # each neighbour pair once
        at = np.minimum(np.searchsorted(cells, cells + step), cells.size - 1)
        joined = np.flatnonzero(cells[at] == cells + step)
        first.append(joined)
        second.append(at[joined])
    a, b = np.concatenate(first + second), np.concatenate(second + first)
    labels = np.arange(cells.size)  # always each cell's root: labels[root] == root
    while True:
        hooked = labels.copy()
        np.minimum.at(hooked, labels[b], labels[a])  # a root hangs under a smaller one
        while not np.array_equal(jumped := hooked[hooked], hooked):
            hooked = jumped
        if np.array_equal(hooked, labels):
            return labels
        labels = hooked


def inked(strength: np.ndarray, low: float, high: float) -> np.ndarray:
    """Ink from 0 (none) to 1 (black): nothing below `low`, black from `high` up."""
    return np.clip((strength - low) / (high - low), 0.0, 1.0).astype(np.float32)


def widen(ink: np.ndarray, width: int) -> np.ndarray:
    """Each line drawn `width` pixels wide: the darkest ink within a disc of that diameter."""
    if width <= 1:
        return ink
    offsets = range(-(width // 2), (width + 1) // 2)
    centre, reach = (width - 1) / 2 - width // 2, (width / 2) ** 2
    padded = np.pad(ink, width, mode="constant")
    height, cols = ink.shape
    out = ink.copy()
    for dy in offsets:
        for dx in offsets:
            if (dy - centre) ** 2 + (dx - centre) ** 2 <= reach:
                np.maximum(out, padded[width + dy:width + dy + height,
                                       width + dx:width + dx + cols], out=out)
    return out
