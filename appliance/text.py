"""Text from manifests made safe for one line of output (a header, a file's credit, a line
on the screen): whatever a model's author wrote, of any length and any characters."""

from __future__ import annotations

# Controls (C0, DEL, C1) become spaces: CR and LF would split a header, NUL ends a PNG
# keyword, and Pillow cannot measure a newline. Lone surrogates, which JSON allows and UTF-8
# cannot encode, become U+FFFD.
_ONE_LINE = {**{c: " " for c in (*range(0x20), *range(0x7F, 0xA0))},
             **{c: "\ufffd" for c in range(0xD800, 0xE000)}}


def one_line(text: str) -> str:
    """`text` without control characters or lone surrogates (see above); never raises."""
    return text.translate(_ONE_LINE)
