"""Text lines from an image: PP-OCRv4 pre- and post-processing in numpy and Pillow.

A re-implementation of rapidocr-onnxruntime 1.4.4's pipeline (detect with a DB
text detector, orient each line 0/180, recognise it with a CTC recogniser)
without OpenCV, shapely or pyclipper, which the box's runtime may not use.
The models themselves are run by callables the caller passes in, so this
module knows nothing of onnxruntime or bundles.

The models were trained on BGR images (rapidocr converts Pillow's RGB to BGR
before anything else), so every tensor built here is in BGR channel order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

RunModel = Callable[[np.ndarray], list]

# rapidocr 1.4.4 config.yaml defaults.
DET_LIMIT_SIDE = 736
# The detector's input is the picture with its longest side at most DET_MAX_SIDE (rapidocr
# allows 2000: a plain grey 2000x2000 PNG of 16 KB then held 300 MB and 4 s of CPU; eight
# at once took the server to 1.65 GB), unless that leaves the shorter side under 736; never
# more than DET_HARD_MAX_SIDE long.
DET_MAX_SIDE = 1280
DET_MIN_SIDE = 30
LETTERBOX_MIN_HEIGHT = 30
LETTERBOX_RATIO = 8
CLS_SHAPE = (48, 192)
REC_SHAPE = (48, 320)
MAX_REC_RATIO = 50  # the widest line the recogniser reads unsqueezed: 2400 px at 48 high
BATCH = 6
MIN_SIZE = 3
# The detector's input grows with the image's aspect; beyond this the tensor
# would be too big for the box (rapidocr has no cap and can exhaust memory).
DET_HARD_MAX_SIDE = 2560


@dataclass(frozen=True)
class Settings:
    """Thresholds of the pipeline; the defaults are rapidocr 1.4.4's."""

    det_thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    max_candidates: int = 1000
    cls_thresh: float = 0.9
    text_score: float = 0.5
    max_lines: int = 1000


@dataclass(frozen=True)
class Line:
    """One line of text: its text, mean character confidence and quad.

    quad holds 4 [x, y] points in the image's pixels: top-left, top-right,
    bottom-right, bottom-left.
    """

    text: str
    confidence: float
    quad: list[list[float]]


@dataclass(frozen=True)
class DetInput:
    """The detector's input tensor and how to map its map back to the image."""

    tensor: np.ndarray
    image_size: tuple[int, int]  # (width, height) of the original image
    pad_top: int  # rows of black added above (letterbox), in original pixels


# --------------------------------------------------------------------------
# Detection preprocessing


def _to_bgr_array(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> uint8 (H, W, 3) array in BGR order."""
    return np.asarray(image.convert("RGB"))[:, :, ::-1]


def _letterbox_pad(width: int, height: int) -> int:
    """Rows to add above and below, as rapidocr's maybe_add_letterbox does.

    Very flat images (and lines under 30 px high) get black bands so the
    detector sees a page-like shape.
    """
    if height > LETTERBOX_MIN_HEIGHT and width / height <= LETTERBOX_RATIO:
        return 0
    new_h = max(int(width / LETTERBOX_RATIO), LETTERBOX_MIN_HEIGHT) * 2
    return int(abs(new_h - height) / 2)


def _det_size(width: int, height: int, limit_side: int) -> tuple[int, int]:
    """The detector's input size: shortest side to limit_side, multiples of 32.

    Follows rapidocr's DetPreProcess (limit_type 'min'), after its outer
    reduction of sides over 2000 px; then caps the longest side for memory.
    """
    scale = 1.0
    if max(width, height) > DET_MAX_SIDE:
        scale = DET_MAX_SIDE / max(width, height)
    if min(width, height) * scale < limit_side:
        scale = limit_side / min(width, height)
    if max(width, height) * scale > DET_HARD_MAX_SIDE:
        scale = DET_HARD_MAX_SIDE / max(width, height)
    out_w = max(32, int(round(int(width * scale) / 32) * 32))
    out_h = max(32, int(round(int(height * scale) / 32) * 32))
    return out_w, out_h


def det_preprocess(image: Image.Image, limit_side: int = DET_LIMIT_SIDE) -> DetInput:
    """Build the detector's (1, 3, H, W) float32 tensor from an RGB image.

    Pixels go to [-1, 1] ((x / 255 - 0.5) / 0.5), BGR order.
    Raises ValueError for an empty image.
    """
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"empty image {width}x{height}")
    pad = _letterbox_pad(width, height)
    if pad:
        canvas = Image.new("RGB", (width, height + 2 * pad))
        canvas.paste(image.convert("RGB"), (0, pad))
        image = canvas
    size = _det_size(image.size[0], image.size[1], limit_side)
    resized = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    arr = _to_bgr_array(resized).astype(np.float32) / 255.0
    tensor = ((arr - 0.5) / 0.5).transpose(2, 0, 1)[None]
    return DetInput(np.ascontiguousarray(tensor), (width, height), pad)


# --------------------------------------------------------------------------
# Geometry: convex hull, minimum-area rectangle


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise in y-up, no repeats) of (N, 2) points.

    Andrew's monotone chain. Fewer than 3 distinct points come back as they are.
    """
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for p in seq:
            while len(out) >= 2:
                a, b = out[-2], out[-1]
                if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower = half(pts)
    upper = half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def min_area_rect(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimum-area enclosing rectangle of (N, 2) points, by rotating calipers.

    Returns (corners (4, 2) float32 in no particular order, shorter side).
    One or two distinct points give a degenerate rectangle of side 0.
    """
    hull = convex_hull(points)
    if len(hull) == 1:
        return np.repeat(hull.astype(np.float32), 4, axis=0), 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    keep = lengths > 0
    axes = edges[keep] / lengths[keep, None]
    normals = np.stack([-axes[:, 1], axes[:, 0]], axis=1)
    along = hull @ axes.T  # (N, E)
    across = hull @ normals.T
    lo_a, hi_a = along.min(0), along.max(0)
    lo_n, hi_n = across.min(0), across.max(0)
    best = int(np.argmin((hi_a - lo_a) * (hi_n - lo_n)))
    u, v = axes[best], normals[best]
    corners = np.array([
        u * lo_a[best] + v * lo_n[best],
        u * hi_a[best] + v * lo_n[best],
        u * hi_a[best] + v * hi_n[best],
        u * lo_a[best] + v * hi_n[best],
    ])
    side = float(min(hi_a[best] - lo_a[best], hi_n[best] - lo_n[best]))
    return corners.astype(np.float32), side


def _mini_box_order(corners: np.ndarray) -> np.ndarray:
    """Order rectangle corners as rapidocr's get_mini_boxes does (tl, tr, br, bl)."""
    pts = corners[np.argsort(corners[:, 0], kind="stable")]
    i1, i4 = (0, 1) if pts[1, 1] > pts[0, 1] else (1, 0)
    i2, i3 = (2, 3) if pts[3, 1] > pts[2, 1] else (3, 2)
    return pts[[i1, i2, i3, i4]]


def grow_rect(corners: np.ndarray, ratio: float) -> tuple[np.ndarray, float]:
    """Unclip a rectangle: offset it outward by d = area * ratio / perimeter.

    For a rectangle, pyclipper's round offset followed by the minimum-area
    rectangle is exactly the rectangle grown by d on every side.
    Returns (corners (4, 2) float32, shorter side).
    """
    center = corners.mean(axis=0)
    e1 = corners[1] - corners[0]
    e2 = corners[3] - corners[0]
    w, h = float(np.hypot(*e1)), float(np.hypot(*e2))
    if w == 0 or h == 0:
        return corners.astype(np.float32), 0.0
    d = w * h * ratio / (2 * (w + h))
    u, v = e1 / w, e2 / h
    half_w, half_h = w / 2 + d, h / 2 + d
    grown = np.array([
        center - u * half_w - v * half_h,
        center + u * half_w - v * half_h,
        center + u * half_w + v * half_h,
        center - u * half_w + v * half_h,
    ])
    return grown.astype(np.float32), min(w, h) + 2 * d


# --------------------------------------------------------------------------
# Connected components over row runs


def _row_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True per row: (row, start, end exclusive) arrays."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    diff = np.diff(padded, axis=1)
    rows_s, starts = np.nonzero(diff == 1)
    _, ends = np.nonzero(diff == -1)
    return rows_s, starts, ends


def _find(parent: list[int], i: int) -> int:
    """Union-find root with path halving."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def connected_runs(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected components of a boolean mask, as boundary points.

    Each component is an (N, 2) int array of (x, y) pixel centres holding
    the first and last pixel of each of its row runs: enough for its hull.
    """
    rows, starts, ends = _row_runs(mask)
    n = len(rows)
    if n == 0:
        return []
    parent = list(range(n))
    row_first = np.searchsorted(rows, np.arange(mask.shape[0] + 1))
    for r in range(1, mask.shape[0]):
        a0, a1 = row_first[r - 1], row_first[r]
        b0, b1 = row_first[r], row_first[r + 1]
        i, j = a0, b0
        # Two runs on adjacent rows touch (8-connected) when they overlap
        # once widened by one pixel; walk both sorted lists together.
        while i < a1 and j < b1:
            if starts[i] <= ends[j] and starts[j] <= ends[i]:
                ri, rj = _find(parent, i), _find(parent, j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    roots = np.array([_find(parent, i) for i in range(n)])
    order = np.argsort(roots, kind="stable")
    cuts = np.nonzero(np.diff(roots[order]))[0] + 1
    comps = []
    for group in np.split(order, cuts):
        y = rows[group]
        xs = np.concatenate([starts[group], ends[group] - 1])
        comps.append(np.stack([xs, np.concatenate([y, y])], axis=1))
    return comps


# --------------------------------------------------------------------------
# DB post-processing


def _dilate2x2(mask: np.ndarray) -> np.ndarray:
    """cv2.dilate with a 2x2 kernel of ones (anchor at its centre, (1, 1)).

    The anchor makes each pixel the OR of itself and its neighbours above
    and to the left.
    """
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:, 1:] |= mask[:, :-1]
    out[1:, 1:] |= mask[:-1, :-1]
    return out


def _quad_mean(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean of prob inside a convex quad (integer-truncated, like fillPoly).

    rapidocr's box_score_fast: the mean over the quad's filled pixels.
    """
    h, w = prob.shape
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    q = quad.astype(np.int32).astype(np.float64)
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    inside = np.ones(xs.shape, dtype=bool)
    sign = np.sign(_cross_z(q))
    for k in range(4):
        a, b = q[k], q[(k + 1) % 4]
        cross = (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])
        # Boundary pixels count, as fillPoly draws them.
        inside &= cross * sign >= -0.5 * np.hypot(*(b - a))
    window = prob[y0:y1 + 1, x0:x1 + 1]
    if not inside.any():
        return 0.0
    return float(window[inside].mean())


def _cross_z(q: np.ndarray) -> float:
    """Twice the signed area of a polygon (its orientation)."""
    x, y = q[:, 0], q[:, 1]
    return float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)) or 1.0


def db_boxes(
    prob: np.ndarray,
    image_size: tuple[int, int],
    thresh: float = 0.3,
    box_thresh: float = 0.5,
    unclip_ratio: float = 1.6,
    max_candidates: int = 1000,
    min_size: int = MIN_SIZE,
) -> list[tuple[np.ndarray, float]]:
    """Boxes of text from a DB probability map (H, W), as rapidocr finds them.

    image_size is (width, height) of the image the map covers (after any
    letterbox). Returns (quad (4, 2) float32 tl, tr, br, bl in that image's
    pixels, score) per box, in no particular order.
    """
    prob = np.asarray(prob, dtype=np.float32)
    height, width = prob.shape
    mask = _dilate2x2(prob > thresh)
    dest_w, dest_h = image_size
    found = []
    for comp in connected_runs(mask)[:max_candidates]:
        rect, side = min_area_rect(comp)
        if side < min_size:
            continue
        rect = _mini_box_order(rect)
        score = _quad_mean(prob, rect)
        if score < box_thresh:
            continue
        grown, side = grow_rect(rect, unclip_ratio)
        if side < min_size + 2:
            continue
        box = _mini_box_order(grown)
        box[:, 0] = np.clip(np.round(box[:, 0] / width * dest_w), 0, dest_w)
        box[:, 1] = np.clip(np.round(box[:, 1] / height * dest_h), 0, dest_h)
        found.append((box, score))
    return found


def order_clockwise(pts: np.ndarray) -> np.ndarray:
    """tl, tr, br, bl from 4 points (rapidocr's order_points_clockwise)."""
    xs = pts[np.argsort(pts[:, 0], kind="stable")]
    left = xs[:2][np.argsort(xs[:2, 1], kind="stable")]
    right = xs[2:][np.argsort(xs[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def tidy_boxes(
    boxes: Sequence[np.ndarray], width: int, height: int
) -> list[np.ndarray]:
    """Order, clip to the image and drop boxes 3 px or less across.

    rapidocr's filter_tag_det_res.
    """
    kept = []
    for box in boxes:
        box = order_clockwise(np.asarray(box, dtype=np.float32))
        box[:, 0] = np.clip(box[:, 0], 0, width - 1).astype(np.int32)
        box[:, 1] = np.clip(box[:, 1], 0, height - 1).astype(np.int32)
        if int(np.hypot(*(box[0] - box[1]))) <= 3:
            continue
        if int(np.hypot(*(box[0] - box[3]))) <= 3:
            continue
        kept.append(box)
    return kept


def sort_boxes(boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Top to bottom, then left to right within 10 px of height.

    rapidocr's sorted_boxes: a sort by the top-left corner's (y, x), then
    a bubble pass that swaps neighbours whose tops differ by under 10 px.
    """
    out = sorted(boxes, key=lambda b: (float(b[0][1]), float(b[0][0])))
    for i in range(len(out) - 1):
        for j in range(i, -1, -1):
            if abs(out[j + 1][0][1] - out[j][0][1]) < 10 and out[j + 1][0][0] < out[j][0][0]:
                out[j], out[j + 1] = out[j + 1], out[j]
            else:
                break
    return out


# --------------------------------------------------------------------------
# Cropping


def crop_quad(image: Image.Image, quad: np.ndarray) -> Image.Image:
    """Cut a quad (tl, tr, br, bl) out of an image as an upright rectangle.

    The size is the longer of each pair of opposite sides; a crop at least
    1.5 times as tall as wide is turned 90° counter-clockwise (np.rot90),
    as rapidocr does for vertical lines.
    """
    q = np.asarray(quad, dtype=np.float64)
    w = int(max(np.hypot(*(q[0] - q[1])), np.hypot(*(q[2] - q[3]))))
    h = int(max(np.hypot(*(q[0] - q[3])), np.hypot(*(q[1] - q[2]))))
    w, h = max(w, 1), max(h, 1)
    # QUAD's data: upper-left, lower-left, lower-right, upper-right.
    data = tuple(float(v) for p in (q[0], q[3], q[2], q[1]) for v in p)
    crop = image.convert("RGB").transform(
        (w, h), Image.Transform.QUAD, data, resample=Image.Resampling.BICUBIC
    )
    if h / w >= 1.5:
        crop = crop.transpose(Image.Transpose.ROTATE_90)
    return crop


# --------------------------------------------------------------------------
# Orientation and recognition tensors


def _resize_pad(crop: Image.Image, height: int, width: int) -> np.ndarray:
    """Resize to a height keeping aspect (at most width), pad right with 0.

    Returns a (3, height, width) float32 array in [-1, 1], BGR order.
    """
    ratio = crop.size[0] / max(crop.size[1], 1)
    new_w = min(width, math.ceil(height * ratio))
    new_w = max(new_w, 1)
    resized = crop.resize((new_w, height), Image.Resampling.BILINEAR)
    arr = _to_bgr_array(resized).astype(np.float32) / 255.0
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :new_w] = ((arr - 0.5) / 0.5).transpose(2, 0, 1)
    return out


def cls_tensor(crops: Sequence[Image.Image]) -> np.ndarray:
    """(N, 3, 48, 192) tensor for the direction classifier."""
    h, w = CLS_SHAPE
    return np.stack([_resize_pad(c, h, w) for c in crops])


def cls_flip(probs: np.ndarray, cls_thresh: float = 0.9) -> list[bool]:
    """Which crops to turn 180°: label '180' (index 1) wins above cls_thresh."""
    probs = np.asarray(probs)
    best = probs.argmax(axis=1)
    return [bool(b == 1 and probs[i, b] > cls_thresh) for i, b in enumerate(best)]


def rec_tensor(crops: Sequence[Image.Image]) -> np.ndarray:
    """(N, 3, 48, W) tensor for the recogniser.

    W is 48 times the widest aspect ratio in the batch (at least 320, at most
    48 x MAX_REC_RATIO: a hair-thin box across a page would otherwise ask for a
    tensor of hundreds of megabytes; wider crops are squeezed to fit).
    """
    h, w = REC_SHAPE
    ratio = max([w / h] + [c.size[0] / max(c.size[1], 1) for c in crops])
    ratio = min(ratio, MAX_REC_RATIO)
    width = int(h * ratio)
    return np.stack([_resize_pad(c, h, width) for c in crops])


# --------------------------------------------------------------------------
# Character set and CTC decoding


def charset_from_model(model_path: str | Path) -> list[str]:
    """The recogniser's characters from its ONNX metadata (build time only).

    PP-OCRv4's rec graph stores them, one per line, under the metadata key
    'character'. Raises KeyError if the key is missing.
    """
    import onnx  # build-time dependency only

    model = onnx.load(str(model_path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    return meta["character"].splitlines()


def load_charset(path: str | Path) -> list[str]:
    """The CTC label list from a charset text file (one character a line).

    Index 0 is the CTC blank and a space is appended at the end, as
    rapidocr does (use_space_char): the model's last class is a space.
    Raises OSError if the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    chars = text.split("\n")
    if chars and chars[-1] == "":
        chars.pop()
    return ["blank", *chars, " "]


def ctc_decode(probs: np.ndarray, labels: Sequence[str]) -> list[tuple[str, float]]:
    """Greedy CTC: best class per step, collapse repeats, drop blanks (0).

    probs is (N, T, C) softmax output. The confidence is the mean of the
    kept steps' probabilities (0 when nothing is kept).
    """
    probs = np.asarray(probs)
    best = probs.argmax(axis=2)
    score = probs.max(axis=2)
    out = []
    for idx, sc in zip(best, score, strict=True):
        keep = np.ones(len(idx), dtype=bool)
        keep[1:] = idx[1:] != idx[:-1]
        keep &= idx != 0
        text = "".join(labels[i] for i in idx[keep])
        conf = float(sc[keep].mean()) if keep.any() else 0.0
        out.append((text, conf))
    return out


# --------------------------------------------------------------------------
# The whole pipeline


def detect(image: Image.Image, run_det: RunModel, settings: Settings) -> list[np.ndarray]:
    """Quads of text lines in reading order, in the image's pixels."""
    det = det_preprocess(image)
    return lines_in(np.asarray(run_det(det.tensor)[0])[0, 0], det.image_size, settings)


def lines_in(prob: np.ndarray, image_size: tuple[int, int], settings: Settings) -> list[np.ndarray]:
    """Quads of text lines in reading order, in the pixels of an image of `image_size`
    (width, height), from the detector's probability map for it (as det_preprocess made
    its input: the letterbox bands are taken off here)."""
    width, height = image_size
    pad = _letterbox_pad(width, height)
    found = db_boxes(
        prob, (width, height + 2 * pad), settings.det_thresh, settings.box_thresh,
        settings.unclip_ratio, settings.max_candidates,
    )
    quads = []
    for box, _score in found:
        box = box.copy()
        box[:, 1] -= pad
        quads.append(box)
    return sort_boxes(tidy_boxes(quads, width, height))


def _batches(order: Sequence[int]) -> list[list[int]]:
    """Split indices into rapidocr's batches of 6."""
    return [list(order[i:i + BATCH]) for i in range(0, len(order), BATCH)]


def _by_aspect(crops: Sequence[Image.Image]) -> list[int]:
    """Indices of crops from narrowest to widest, as rapidocr batches them."""
    ratios = np.array([c.size[0] / max(c.size[1], 1) for c in crops])
    return [int(i) for i in np.argsort(ratios)]


def orient(crops: list[Image.Image], run_cls: RunModel, cls_thresh: float) -> list[Image.Image]:
    """Turn the crops the classifier finds upside down."""
    out = list(crops)
    for batch in _batches(_by_aspect(crops)):
        probs = np.asarray(run_cls(cls_tensor([crops[i] for i in batch]))[0])
        for i, flip in zip(batch, cls_flip(probs, cls_thresh), strict=True):
            if flip:
                out[i] = crops[i].transpose(Image.Transpose.ROTATE_180)
    return out


def recognise(
    crops: list[Image.Image], run_rec: RunModel, labels: Sequence[str]
) -> list[tuple[str, float]]:
    """Text and confidence of each crop."""
    out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    for batch in _batches(_by_aspect(crops)):
        probs = np.asarray(run_rec(rec_tensor([crops[i] for i in batch]))[0])
        for i, res in zip(batch, ctc_decode(probs, labels), strict=True):
            out[i] = res
    return out


def read(
    image: Image.Image,
    run_det: RunModel,
    run_cls: RunModel | None,
    run_rec: RunModel,
    charset: Sequence[str],
    settings: Settings = Settings(),
) -> list[Line]:
    """Every line of text in an image, in reading order.

    charset is the label list of load_charset (blank first, space last).
    run_cls None skips the orientation step. Lines under text_score are
    dropped; at most max_lines are kept.
    Raises ValueError for an empty image.
    """
    quads = detect(image, run_det, settings)[: settings.max_lines]
    if not quads:
        return []
    crops = [crop_quad(image, q) for q in quads]
    if run_cls is not None:
        crops = orient(crops, run_cls, settings.cls_thresh)
    lines = []
    for quad, (text, conf) in zip(quads, recognise(crops, run_rec, charset), strict=True):
        if conf >= settings.text_score:
            lines.append(Line(text, conf, quad.astype(float).tolist()))
    return lines
