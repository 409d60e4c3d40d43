"""Response headers that carry manifest text: a model's name and version, author, licence.

A manifest may hold any Unicode of any length, newlines included; a header value may not
(Werkzeug refuses CR and LF, waitress anything outside Latin-1, RFC 9110 asks for visible
ASCII, and clients cap header sizes). So every such header is sent twice over:

- `NAME`: always plain printable ASCII, at most MAX_CHARS characters: accents dropped,
  dashes, quotes and spaces as their ASCII look-alikes, anything else '?';
- `NAME*`: only when the ASCII lost something, the exact text (still cleaned and bounded) in
  RFC 8187's encoding, `UTF-8''` and percent-encoded UTF-8, as `filename*` carries names in
  Content-Disposition (RFC 6266); a client reads it with `unquote(value[7:])`.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from appliance.text import one_line

MAX_CHARS = 200
CUT = "..."
# RFC 8187 attr-char beyond what `quote` always keeps (letters, digits, '-', '.', '_', '~').
_ATTR_CHAR = "!#$&+^`|"
_LOOKALIKES = {
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u2033\u00ab\u00bb", '"'),
    "\u2026": "...", "\u00b7": "-", "\u2022": "*", "\u00d7": "x", "\u00a9": "(c)",
    "\u00ae": "(R)", "\u2122": "TM", "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE",
    "\u0153": "oe", "\u0152": "OE", "\u00f8": "o", "\u00d8": "O", "\u0142": "l",
    "\u0141": "L", "\u0111": "d", "\u0110": "D", "\u00f0": "d", "\u00fe": "th",
}


def text_headers(name: str, text: str) -> dict[str, str]:
    """The headers that carry `text` under `name`: `{name: ascii}`, plus
    `{name + "*": "UTF-8''..."}` when the ASCII is not the whole text. Never raises."""
    clean = _clean(text)
    plain = _ascii(clean)
    if plain == clean:
        return {name: plain}
    return {name: plain, f"{name}*": "UTF-8''" + quote(clean.encode("utf-8"), safe=_ATTR_CHAR)}


def _clean(text: str) -> str:
    """`text` on one line, its runs of white space as one space, at most MAX_CHARS long.

    Only the first 4 x MAX_CHARS characters are read: room for any real name with its white
    space, and a bound for anything else."""
    text = str(text)
    head = one_line(text[:MAX_CHARS * 4])
    line = " ".join(head.split())
    if len(line) > MAX_CHARS or (len(text) > len(head) and line):
        return line[:MAX_CHARS - len(CUT)].rstrip() + CUT
    return line


def _ascii(text: str) -> str:
    """`text` in printable ASCII: look-alikes, then decomposition (é to e), then '?'; at
    most MAX_CHARS long (a look-alike can be longer than its character: … is ...)."""
    line = "".join(_ascii_char(c) for c in text)
    return line if len(line) <= MAX_CHARS else line[:MAX_CHARS - len(CUT)] + CUT


def _ascii_char(char: str) -> str:
    if " " <= char <= "~":
        return char
    if char in _LOOKALIKES:
        return _LOOKALIKES[char]
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return ""  # combining marks and invisible format characters: nothing to show
    if unicodedata.category(char) == "Zs":
        return " "
    base = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in base if " " <= c <= "~")
    return kept or "?"
