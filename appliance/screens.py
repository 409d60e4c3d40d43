"""What the gallery screen shows, as pure functions of state: state in, PIL image out.

Layout is by proportion and type is sized to the screen, so the same code serves a 240 px SPI
panel and a 4K television, portrait or landscape. The font is the one Pillow ships (no
download, the same on every box, so golden-image tests hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from appliance.text import one_line

INK = (245, 245, 240)
SHADE = (0, 0, 0, 150)
ACCENT = (249, 115, 22)
PAPER = (24, 24, 27)


@dataclass(frozen=True)
class Caption:
    """The quiet strip: the model, its author, its licence. Artists' names are the work."""

    model: str
    author: str
    license: str


@dataclass(frozen=True)
class Status:
    """What the owner needs to find and fix the box."""

    address: str
    name: str
    port: int
    model: str
    author: str
    license: str
    mode: str = "auto"


@dataclass(frozen=True)
class TeachClass:
    """One class on the teach screen: its name, how many photos, the latest one."""

    name: str
    count: int
    thumbnail: Image.Image | None = None


@dataclass(frozen=True)
class TeachView:
    """What the teach screen shows beside the camera: the model, its classes (the chosen
    one gets the next photo), and one note (the last fit's warning, or what went wrong)."""

    model: str
    classes: tuple[TeachClass, ...]
    chosen: int
    note: str = ""
    alert: bool = False
    hint: str = "next, previous: class · capture: add this picture · hold: finish"


def font(size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(max(8, round(size)))


def unit(size: tuple[int, int]) -> float:
    """One typographic unit: 1/20 of the shorter side."""
    return min(size) / 20


def fill(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image cropped to fill the screen edge to edge (never letterboxed)."""
    return ImageOps.fit(image.convert("RGB"), size, Image.BILINEAR)


def result(size: tuple[int, int], frame: Image.Image, task: str, body: dict[str, Any],
           output: Image.Image | None, caption: Caption | None, hint: str = "",
           backdrop: Image.Image | None = None) -> Image.Image:
    """The result screen for any task, as the task draws it (the frame alone for a task
    this box does not know), with the caption strip."""
    from appliance import tasks

    if task in tasks.NAMES:
        screen = tasks.get(task).draw(size, frame, body, output, backdrop).convert("RGB")
    else:
        screen = fill(frame, size)
    _caption(screen, caption, hint)
    return screen


def attract(size: tuple[int, int], pictures: list[Image.Image], t: float,
            caption: Caption | None, hint: str, seconds_each: float = 6.0) -> Image.Image:
    """A slow cross-fade through recent captures (or one picture), with the hint."""
    if not pictures:
        screen = Image.new("RGB", size, PAPER)
    else:
        position = t / seconds_each
        index = int(position) % len(pictures)
        fade = min(1.0, (position % 1.0) * 4)  # a quarter of the time fading, then still
        current = fill(pictures[index], size)
        previous = fill(pictures[index - 1], size)
        screen = Image.blend(previous, current, fade) if len(pictures) > 1 else current
    _caption(screen, caption, hint)
    return screen


def status(size: tuple[int, int], info: Status) -> Image.Image:
    """The status card: where the box is and what it runs."""
    screen = Image.new("RGB", size, PAPER)
    draw = ImageDraw.Draw(screen)
    u = unit(size)
    x, y = u * 1.5, u * 1.5
    draw.text((x, y), "appliance", font=font(u * 1.6), fill=ACCENT)
    y += u * 3
    rows = [("Address", f"http://{info.address}:{info.port}/"),
            ("Name", f"{info.name}.local"), ("Model", info.model),
            ("Author", info.author), ("Licence", info.license), ("Mode", info.mode)]
    for label, value in rows:
        draw.text((x, y), label, font=font(u * 0.7), fill=(160, 160, 160))
        draw.text((x, y + u * 0.9), _fit(draw, value, font(u), size[0] - 2 * x), font=font(u),
                  fill=INK)
        y += u * 2.3
    return screen


def error(size: tuple[int, int], what: str, action: str, info: Status | None) -> Image.Image:
    """A calm full-screen card for the owner: what broke and the one thing to do."""
    screen = Image.new("RGB", size, PAPER)
    draw = ImageDraw.Draw(screen)
    u = unit(size)
    width = size[0] - 3 * u
    y = size[1] * 0.3
    bottom = size[1] - u * 2  # above the footer line
    # `what` may quote anything (a manifest, an exception): it keeps one line for `action`.
    for line in _wrap(draw, what, font(u * 1.3), width, _lines(bottom - y - u * 1.8, u * 1.7)):
        draw.text((u * 1.5, y), line, font=font(u * 1.3), fill=INK)
        y += u * 1.7
    y += u * 0.6
    for line in _wrap(draw, action, font(u * 0.9), width, _lines(bottom - y, u * 1.2)):
        draw.text((u * 1.5, y), line, font=font(u * 0.9), fill=ACCENT)
        y += u * 1.2
    if info is not None:
        small = (f"http://{info.address}:{info.port}/  ·  {info.name}.local  ·  "
                 f"model {info.model}")
        draw.text((u * 1.5, size[1] - u * 1.5), _fit(draw, small, font(u * 0.6), width),
                  font=font(u * 0.6), fill=(150, 150, 150))
    return screen


def teach(size: tuple[int, int], frame: Image.Image | None, view: TeachView) -> Image.Image:
    """The teach screen: the camera picture (what a press adds) beside the classes, each
    with its count and latest photo, the chosen one marked, and the note and the hint
    below. Landscape puts the classes on the right, portrait below."""
    screen = Image.new("RGB", size, PAPER)
    w, h = size
    split = (round(w * 0.55), 0) if w >= h else (0, round(h * 0.45))
    picture = (split[0] or w, split[1] or h)
    if frame is not None:
        screen.paste(fill(frame, picture), (0, 0))
    draw = ImageDraw.Draw(screen)
    u = unit(size)
    chosen = view.classes[view.chosen].name if view.classes else ""
    if chosen:
        draw.text((u * 0.6, u * 0.5), _fit(draw, f"+ {chosen}", font(u * 1.1),
                                           picture[0] - u * 1.2), font=font(u * 1.1),
                  fill=INK, stroke_width=max(1, round(u / 10)), stroke_fill=(0, 0, 0))
    left, top = split[0] + u * 0.8, split[1] + u * 0.6
    width = w - left - u * 0.8
    draw.text((left, top), _fit(draw, f"Teaching {view.model}", font(u * 0.9), width),
              font=font(u * 0.9), fill=ACCENT)
    notes = _wrap(draw, view.note, font(u * 0.6), width, 3) if view.note else []
    bottom = h - u * (1.6 + 0.8 * len(notes))
    _teach_rows(draw, screen, view, (left, top + u * 1.5, width, bottom))
    y = bottom + u * 0.2
    for line in notes:
        draw.text((left, y), line, font=font(u * 0.6), fill=(248, 113, 113) if view.alert
                  else (252, 211, 77))
        y += u * 0.8
    draw.text((left, h - u * 1.1), _fit(draw, view.hint, font(u * 0.5), width),
              font=font(u * 0.5), fill=(150, 150, 150))
    return screen


def _teach_rows(draw: ImageDraw.ImageDraw, screen: Image.Image, view: TeachView,
                box: tuple[float, float, float, float]) -> None:
    """The classes in `box` (left, top, width, bottom), as many as fit around the chosen
    one: a thumbnail square, the name, the count; the chosen row outlined in the accent."""
    left, top, width, bottom = box
    u = unit(screen.size)
    row = max(u * 1.4, min(u * 2.6, (bottom - top) / max(1, len(view.classes))))
    fits = max(1, int((bottom - top) // row))
    first = max(0, min(view.chosen - fits // 2, len(view.classes) - fits))
    for i, item in enumerate(view.classes[first:first + fits], start=first):
        y = top + (i - first) * row
        side = round(row - u * 0.4)
        if item.thumbnail is not None:
            screen.paste(fill(item.thumbnail, (side, side)), (round(left), round(y)))
        else:
            draw.rectangle((left, y, left + side, y + side), outline=(90, 90, 90))
        if i == view.chosen:
            draw.rectangle((left - u * 0.3, y - u * 0.2, left + width, y + side + u * 0.2),
                           outline=ACCENT, width=max(1, round(u / 8)))
        x, room = left + side + u * 0.5, width - side - u * 0.7
        draw.text((x, y), _fit(draw, item.name, font(u * 0.8), room), font=font(u * 0.8),
                  fill=INK)
        words = "no photos yet" if not item.count else \
            f"{item.count} photo{'s' if item.count != 1 else ''}"
        draw.text((x, y + u * 0.95), words, font=font(u * 0.55), fill=(160, 160, 160))


def _lines(height: float, step: float) -> int:
    """How many lines `step` apart fit in `height` (at least one)."""
    return max(1, int(height / step))


def labels(screen: Image.Image, predictions: list[dict]) -> None:
    """Draw the labels and their score bars over the bottom of `screen`, the first large."""
    u = unit(screen.size)
    overlay = Image.new("RGBA", screen.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    x = u * 1.2
    y = screen.size[1] - u * (3.2 + 2.6 * len(predictions))
    bar_width = min(screen.size[0] - 2 * x, u * 16)
    draw.rectangle((0, y - u, screen.size[0], screen.size[1]), fill=(0, 0, 0, 110))
    for rank, prediction in enumerate(predictions):
        size = u * (1.6 if rank == 0 else 1.0)
        text = _fit(draw, prediction["label"], font(size), bar_width)
        draw.text((x, y), text, font=font(size), fill=INK)
        y += size * 1.25
        score = max(0.0, min(1.0, float(prediction["score"])))
        draw.rectangle((x, y, x + bar_width, y + u * 0.18), fill=(255, 255, 255, 60))
        draw.rectangle((x, y, x + bar_width * score, y + u * 0.18), fill=ACCENT)
        y += u * 0.9
    screen.paste(Image.alpha_composite(screen.convert("RGBA"), overlay).convert("RGB"))


def banner(screen: Image.Image, text: str) -> None:
    """One line of large text at the top of `screen`."""
    u = unit(screen.size)
    draw = ImageDraw.Draw(screen)
    draw.text((u * 1.2, u * 1.2), text, font=font(u * 1.1), fill=INK, stroke_width=2,
              stroke_fill=(0, 0, 0))


def _caption(screen: Image.Image, caption: Caption | None, hint: str) -> None:
    u = unit(screen.size)
    overlay = Image.new("RGBA", screen.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    height = u * 1.4
    top = screen.size[1] - height
    draw.rectangle((0, top, screen.size[0], screen.size[1]), fill=SHADE)
    if caption is not None:
        text = _credit(draw, caption, font(u * 0.6), screen.size[0] - 1.6 * u)
        draw.text((u * 0.8, top + u * 0.35), text, font=font(u * 0.6), fill=(220, 220, 220))
    if hint:
        hint_font = font(u * 1.0)
        y = u * 0.8
        lines = _wrap(draw, hint, hint_font, screen.size[0] - 2 * u,
                      _lines(top - y, u * 1.3))
        for line in lines:
            width = draw.textlength(line, font=hint_font)
            draw.text(((screen.size[0] - width) / 2, y), line, font=hint_font, fill=INK,
                      stroke_width=max(1, round(u / 12)), stroke_fill=(0, 0, 0))
            y += u * 1.3
    screen.paste(Image.alpha_composite(screen.convert("RGBA"), overlay).convert("RGB"))


# The narrowest glyph of Pillow's default font (Aileron) is 1/8 em; 1/10 em leaves room for
# kerning and rounding. No more than width / (MIN_ADVANCE_EM em) characters fit on a line, so
# no more are ever measured: fitting costs what the screen holds, not what the text holds (a
# 200 KB author once stopped the kiosk loop). Glyphs narrower still (zero-width marks) only
# bring the ellipsis a little early.
MIN_ADVANCE_EM = 0.1


def _bound(face, width: float) -> int:
    """The most characters of `face` that could fit in `width` pixels."""
    return max(0, int(width / (getattr(face, "size", 8) * MIN_ADVANCE_EM))) + 1


def _credit(draw: ImageDraw.ImageDraw, caption: Caption, face, width: float) -> str:
    """'model  ·  author  ·  licence' fitted to `width`; when the author would push the
    licence out of sight, the author gives way (the licence keeps up to a third of the line)."""
    limit = _bound(face, width)
    model, author, licence = (one_line(t[:limit + 1])
                              for t in (caption.model, caption.author, caption.license))
    head = f"{model}  ·  "
    full = f"{head}{author}  ·  {licence}"
    plain = _fit(draw, full, face, width)
    if plain == full or len(plain) > len(head) + len(author) + 6:  # some licence shows
        return plain
    tail = f"  ·  {_fit(draw, licence, face, width / 3)}"
    room = width - draw.textlength(head + tail, font=face)
    if room < face.size * 3:
        return plain
    return _fit(draw, head + _fit(draw, author, face, room) + tail, face, width)


def _fit(draw: ImageDraw.ImageDraw, text: str, face, width: float) -> str:
    """`text`, shortened with an ellipsis until it fits `width`."""
    limit = _bound(face, width)
    text = one_line(text[:limit + 1])
    if len(text) <= limit and draw.textlength(text, font=face) <= width:
        return text
    return _shorten(draw, text, face, width)


def _shorten(draw: ImageDraw.ImageDraw, text: str, face, width: float) -> str:
    """The longest prefix of `text` that fits `width` with an ellipsis after it, and the
    ellipsis: a binary search over the prefix's length, a dozen measurements at most."""
    text = one_line(text[:_bound(face, width)])
    fits, too_long = 0, len(text) + 1
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if draw.textlength(text[:middle] + "…", font=face) <= width:
            fits = middle
        else:
            too_long = middle
    return text[:fits] + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, face, width: float,
          max_lines: int) -> list[str]:
    """`text` in lines of whole words that fit `width`, at most `max_lines`; a word wider
    than a line is shortened, and text left over ends the last line with an ellipsis."""
    limit = _bound(face, width)
    room = (limit + 1) * max_lines  # more characters than `max_lines` lines can hold
    words = one_line(text[:room]).split()
    lines: list[str] = []
    while words and len(lines) < max_lines:
        count = _words_that_fit(draw, words, face, width, limit)
        lines.append(" ".join(words[:count]))
        words = words[count:]
    if lines and (words or len(text) > room):
        lines[-1] = _shorten(draw, f"{lines[-1]} {' '.join(words[:limit])}", face, width)
    return [_fit(draw, line, face, width) for line in lines]


def _words_that_fit(draw: ImageDraw.ImageDraw, words: list[str], face, width: float,
                    limit: int) -> int:
    """How many of the first `words` fit on one line, by a binary search over their number
    (at least one: a word wider than the line stands alone, to be shortened)."""
    candidates, chars = 0, -1
    while candidates < len(words) and chars + 1 + len(words[candidates]) <= limit:
        chars += 1 + len(words[candidates])
        candidates += 1
    fits, too_many = 1, candidates + 1
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if draw.textlength(" ".join(words[:middle]), font=face) <= width:
            fits = middle
        else:
            too_many = middle
    return fits
