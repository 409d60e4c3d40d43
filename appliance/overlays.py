"""How the gallery screen draws the results of the vision tasks: boxes with their labels, a
person cut out and standing on a backdrop, a skeleton, and the text a picture holds.

Pure functions like `appliance.screens`: state in, PIL image out, laid out by proportion of
the screen so one code serves a 240 px panel and a 4K television. A result is untrusted
JSON-shaped data (a bundle's model, a peer, a fuzzer): coordinates may be NaN, huge or off
the frame, lists may hold thousands of items or items of the wrong shape, labels may be of
any length. Each function skips what it cannot draw, draws a bounded number of things and
never raises for such input.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from appliance.screens import ACCENT, INK, PAPER, _fit, _wrap, fill, font, unit

MOST_BOXES = 50  # the best boxes drawn; more would hide the picture (and cost time)
MOST_PEOPLE = 20
MOST_EDGES = 64
MOST_LINES = 60  # text lines outlined; the panel shows as many as fit
SHADOW = (0, 0, 0, 140)  # under every stroke, so lines read on bright and dark pictures
TAG_INK = PAPER  # dark on the orange tag: about 7:1, where white would be 2.8:1
FAR = 1e5  # coordinates beyond this many pixels are clamped: Pillow draws with C ints

Point = tuple[float, float]


class Crop:
    """How `screens.fill` maps a frame's pixels onto the screen it fills."""

    def __init__(self, frame_size: tuple[int, int], size: tuple[int, int]) -> None:
        self.scale = max(size[0] / frame_size[0], size[1] / frame_size[1])
        self.dx = (frame_size[0] * self.scale - size[0]) / 2
        self.dy = (frame_size[1] * self.scale - size[1]) / 2

    def point(self, x: float, y: float) -> Point:
        """A frame pixel's place on the screen (clamped far off it when huge)."""
        return (_clamp(x * self.scale - self.dx), _clamp(y * self.scale - self.dy))


def boxes(size: tuple[int, int], frame: Image.Image, detections: Any) -> Image.Image:
    """The frame filling the screen with the best `MOST_BOXES` detections drawn on it: each
    box in rounded lines and a tag with its label and score (the best drawn last, on top)."""
    screen = fill(frame, size)
    crop = Crop(frame.size, size)
    found = heapq.nlargest(MOST_BOXES, _detections(detections), key=lambda d: d[1])
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    placed = [(label, score, _on_screen((*crop.point(*box[:2]), *crop.point(*box[2:])), size))
              for label, score, box in reversed(found)]
    placed = [(label, score, rect) for label, score, rect in placed if rect is not None]
    for _, _, rect in placed:
        _box(draw, rect, size)
    for label, score, rect in placed:  # every tag over every line, so each stays legible
        _tag(draw, f"{label} {round(score * 100)}%", rect, size)
    return _over(screen, overlay)


def cutout(size: tuple[int, int], cut: Image.Image, backdrop: Image.Image | None) -> Image.Image:
    """The RGBA cut-out standing on `backdrop` (filled to the screen; a soft gradient when
    None): trimmed to the figure, as large as keeps its aspect ratio within most of the
    screen, centred, its feet on the bottom edge, with a soft shadow behind it."""
    screen = fill(backdrop, size) if backdrop is not None else gradient(size)
    figure = _trim(cut.convert("RGBA"))
    if figure is None:
        return screen
    scale = min(size[0] * 0.92 / figure.width, size[1] * 0.88 / figure.height)
    width, height = max(1, round(figure.width * scale)), max(1, round(figure.height * scale))
    figure = figure.resize((width, height), Image.BICUBIC)
    left, top = (size[0] - width) // 2, size[1] - height
    _shadow(screen, figure.getchannel("A"), (left, top))
    screen.paste(figure, (left, top), figure)
    return screen


def skeleton(size: tuple[int, int], frame: Image.Image, people: Any, edges: Any,
             min_score: float = 0.3) -> Image.Image:
    """The frame filling the screen with each person's skeleton: limbs in clean lines and
    joints as dots, only for keypoints scored `min_score` or more (the best `MOST_PEOPLE`)."""
    screen = fill(frame, size)
    crop = Crop(frame.size, size)
    pairs = _edges(edges)
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    u = unit(size)
    width, radius = max(2, round(u / 4)), max(2.0, u * 0.28)
    for points in _people(people, min_score):
        placed = {name: crop.point(x, y) for name, (x, y) in points.items()}
        segments = [(placed[a], placed[b]) for a, b in pairs if a in placed and b in placed]
        for a, b in segments:
            draw.line((a, b), fill=SHADOW, width=width + max(2, round(u / 8)))
        for a, b in segments:
            draw.line((a, b), fill=INK, width=width)
        for x, y in placed.values():
            if -radius <= x <= size[0] + radius and -radius <= y <= size[1] + radius:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ACCENT,
                             outline=SHADOW, width=max(1, round(u / 12)))
    return _over(screen, overlay)


def text_lines(size: tuple[int, int], frame: Image.Image, lines: Any) -> Image.Image:
    """The frame, dimmed, beside (landscape) or above (portrait) a panel of the text read
    from it, as large as lets it all fit (shortened when even the smallest size cannot);
    each line's box outlined on the frame."""
    picture, panel = _split(size)
    found = _text_lines(lines)
    screen = Image.new("RGB", size, PAPER)
    shown = fill(frame, (picture[2] - picture[0], picture[3] - picture[1]))
    screen.paste(Image.blend(shown, Image.new("RGB", shown.size, (0, 0, 0)), 0.35),
                 picture[:2])
    _outlines(screen, frame.size, picture, [quad for _, quad in found])
    _panel(screen, panel, [text for text, _ in found])
    return screen


def gradient(size: tuple[int, int]) -> Image.Image:
    """A calm backdrop: deep blue-grey at the top to a warm glow at the floor."""
    small = (max(1, size[0] // 8), max(1, size[1] // 8))  # smooth: made small, then enlarged
    top, bottom = Image.new("RGB", small, (30, 34, 46)), Image.new("RGB", small, (112, 86, 74))
    ramp = Image.linear_gradient("L").resize(small, Image.BILINEAR)
    glow = Image.radial_gradient("L").resize(small, Image.BILINEAR)
    light = Image.new("RGB", small, (150, 130, 118))
    lit = Image.composite(Image.composite(bottom, top, ramp), light, glow.point(_glow))
    return lit.resize(size, Image.BICUBIC)


def _glow(value: int) -> int:
    return max(value, 150)  # the light reaches only the middle of the screen


# -- reading untrusted results -------------------------------------------------------------

def _number(value: Any) -> float | None:
    """`value` as a finite float, or None (bools, strings, NaN and infinities are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _clamp(value: float) -> float:
    return max(-FAR, min(FAR, value))


def _detections(detections: Any) -> Iterable[tuple[str, float, tuple[float, ...]]]:
    """(label, score in 0..1, box) of each well-formed detection."""
    if not isinstance(detections, list):
        return
    for item in detections:
        if not isinstance(item, dict) or not isinstance(item.get("box"), list | tuple):
            continue
        box = tuple(_number(v) for v in item["box"][:5])
        score = _number(item.get("score"))
        if len(box) == 4 and None not in box:
            label = item.get("label")
            yield (label if isinstance(label, str) else "?",
                   max(0.0, min(1.0, score if score is not None else 0.0)), box)


def _people(people: Any, min_score: float) -> list[dict[str, Point]]:
    """The best `MOST_PEOPLE` people's confident keypoints, by name."""
    if not isinstance(people, list):
        return []
    scored = [(_number(p.get("score")) or 0.0, i, p) for i, p in enumerate(people)
              if isinstance(p, dict) and isinstance(p.get("keypoints"), list)]
    best = heapq.nlargest(MOST_PEOPLE, scored, key=lambda s: (s[0], -s[1]))
    return [_keypoints(p["keypoints"], min_score) for _, _, p in best]


def _keypoints(keypoints: list, min_score: float) -> dict[str, Point]:
    points: dict[str, Point] = {}
    for point in keypoints[:MOST_EDGES]:
        if not isinstance(point, dict) or not isinstance(point.get("name"), str):
            continue
        x, y, score = (_number(point.get(k)) for k in ("x", "y", "score"))
        if x is not None and y is not None and score is not None and score >= min_score:
            points[point["name"]] = (x, y)
    return points


def _edges(edges: Any) -> list[tuple[str, str]]:
    """The first `MOST_EDGES` well-formed pairs of keypoint names."""
    if not isinstance(edges, list):
        return []
    pairs = [tuple(e) for e in edges[:MOST_EDGES] if isinstance(e, list | tuple) and len(e) == 2]
    return [(a, b) for a, b in pairs if isinstance(a, str) and isinstance(b, str)]


def _text_lines(lines: Any) -> list[tuple[str, list[Point]]]:
    """(text, corners) of the first `MOST_LINES` lines; corners empty where malformed."""
    if not isinstance(lines, list):
        return []
    found = []
    for item in lines[:MOST_LINES]:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            found.append((item["text"], _quad(item.get("box"))))
    return found


def _quad(box: Any) -> list[Point]:
    if not isinstance(box, list | tuple):
        return []
    corners = [(_number(p[0]), _number(p[1])) for p in box[:8]
               if isinstance(p, list | tuple) and len(p) == 2]
    if len(corners) < 3 or any(x is None or y is None for x, y in corners):
        return []
    return corners  # type: ignore[return-value]  # checked just above


# -- drawing --------------------------------------------------------------------------------

def _on_screen(rect: tuple[float, ...], size: tuple[int, int]) -> tuple[float, ...] | None:
    """`rect` ordered and clipped to just beyond the screen, or None when it is off it."""
    x0, x1 = sorted(rect[0::2])
    y0, y1 = sorted(rect[1::2])
    if x1 < 0 or y1 < 0 or x0 > size[0] or y0 > size[1]:
        return None
    margin = unit(size)
    x0, y0 = max(x0, -margin), max(y0, -margin)
    return x0, y0, max(min(x1, size[0] + margin), x0 + 1), max(min(y1, size[1] + margin), y0 + 1)


def _box(draw: ImageDraw.ImageDraw, rect: tuple[float, ...], size: tuple[int, int]) -> None:
    stroke = max(2, round(unit(size) / 6))
    radius = min(stroke * 3, (rect[2] - rect[0]) / 2, (rect[3] - rect[1]) / 2)
    draw.rounded_rectangle(rect, radius=max(0, radius), outline=SHADOW, width=stroke + 2)
    draw.rounded_rectangle(rect, radius=max(0, radius), outline=ACCENT, width=stroke)


def _tag(draw: ImageDraw.ImageDraw, text: str, rect: tuple[float, ...],
         size: tuple[int, int]) -> None:
    """`text` on an orange tag at the box's top-left corner: above the box where there is
    room, else just inside it; kept on the screen."""
    u = unit(size)
    face = font(u * 0.9)
    pad = max(1.0, u * 0.3)
    text = _fit(draw, text, face, max(u * 3, min(size[0] * 0.6, size[0] - 2 * pad)))
    width, height = draw.textlength(text, font=face) + 2 * pad, face.size * 1.1 + 2 * pad
    x = max(0.0, min(rect[0], size[0] - width))
    y = rect[1] - height if rect[1] - height >= 0 else max(0.0, rect[1])
    y = min(y, size[1] - height)
    draw.rounded_rectangle((x, y, x + width, y + height), radius=pad, fill=ACCENT)
    draw.text((x + pad, y + pad), text, font=face, fill=TAG_INK)


def _trim(cut: Image.Image) -> Image.Image | None:
    """The cut-out cropped to its figure (alpha at least half), or None when it has none."""
    solid = cut.getchannel("A").point(lambda a: 255 if a >= 128 else 0)
    box = solid.getbbox()
    return cut.crop(box) if box else None


def _shadow(screen: Image.Image, alpha: Image.Image, at: tuple[int, int]) -> None:
    """A soft shadow of the figure's outline, a little down and right of it."""
    u = unit(screen.size)
    shade = alpha.point(lambda a: a * 90 // 255).filter(ImageFilter.BoxBlur(max(1, u / 3)))
    offset = (at[0] + round(u / 4), at[1] + round(u / 4))
    screen.paste(Image.new("RGB", alpha.size, (0, 0, 0)), offset, shade)


def _split(size: tuple[int, int]) -> tuple[tuple[int, int, int, int], tuple[int, ...]]:
    """The picture's rectangle and the text panel's: side by side on a landscape screen, one
    above the other on a portrait one (the panel 45% of the screen, at least one pixel)."""
    w, h = size
    if w >= h:
        cut = max(1, min(w - 1, round(w * 0.55)))
        return (0, 0, cut, h), (cut, 0, w, h)
    cut = max(1, min(h - 1, round(h * 0.55)))
    return (0, 0, w, cut), (0, cut, w, h)


def _outlines(screen: Image.Image, frame_size: tuple[int, int],
              picture: tuple[int, int, int, int], quads: list[list[Point]]) -> None:
    """Each text line's box outlined where the picture shows it."""
    area = (picture[2] - picture[0], picture[3] - picture[1])
    crop = Crop(frame_size, area)
    overlay = Image.new("RGBA", area, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    stroke = max(2, round(unit(screen.size) / 6))
    for quad in filter(None, quads):  # a malformed box is left out, its text still shown
        corners = [crop.point(x, y) for x, y in quad]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        if max(xs) < 0 or max(ys) < 0 or min(xs) > area[0] or min(ys) > area[1]:
            continue
        draw.polygon(corners, outline=SHADOW, width=stroke + 2)
        draw.polygon(corners, outline=ACCENT, width=stroke)
    part = screen.crop(picture).convert("RGBA")
    screen.paste(Image.alpha_composite(part, overlay).convert("RGB"), picture[:2])


def _panel(screen: Image.Image, panel: tuple[int, ...], texts: list[str]) -> None:
    """The texts in the panel, one paragraph each, at the largest size that fits them all
    (at the smallest, as many rows as fit, the last ended by an ellipsis)."""
    u = unit(screen.size)
    draw = ImageDraw.Draw(screen)
    left, top = panel[0] + u, panel[1] + u
    width = panel[2] - panel[0] - 2 * u
    height = panel[3] - u * 1.8 - top  # above the caption strip
    draw.rectangle((panel[0], panel[1], panel[0] + max(1, u / 6), panel[3]), fill=ACCENT)
    if not texts:
        draw.text((left, top), "No text found", font=font(u), fill=(160, 160, 160))
        return
    for em in (1.6, 1.3, 1.0, 0.8):
        rows, whole = _paragraphs(draw, texts, font(u * em), width, height, u * em)
        if whole:
            break
    if not whole and rows and not rows[-1][0].endswith("…"):
        rows[-1] = (_fit(draw, rows[-1][0] + " …", font(u * em), width), rows[-1][1])
    for row, y in rows:
        draw.text((left, top + y), row, font=font(u * em), fill=INK)


def _paragraphs(draw: ImageDraw.ImageDraw, texts: list[str], face, width: float,
                height: float, em: float) -> tuple[list[tuple[str, float]], bool]:
    """The rows of `texts` wrapped to `width`, each with its offset from the top, as many as
    fit in `height`; and whether that is all of them."""
    rows: list[tuple[str, float]] = []
    y, step = 0.0, em * 1.25
    for text in texts:
        room = int((height - y) / step)
        if room <= 0:
            return rows, False
        wrapped = _wrap(draw, text, face, width, room)
        for row in wrapped:
            rows.append((row, y))
            y += step
        if len(_wrap(draw, text, face, width, room + 1)) > room:
            return rows, False
        y += em * 0.35 if wrapped else 0.0
    return rows, True


def _over(screen: Image.Image, overlay: Image.Image) -> Image.Image:
    return Image.alpha_composite(screen.convert("RGBA"), overlay).convert("RGB")
