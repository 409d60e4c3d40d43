"""The one-file form that `curl -F image=@photo.jpg` sends, read without a general parser.

werkzeug's multipart parser runs each upload through a state machine of regular expressions
and copies the file through a spooled temporary file: 0.46-0.60 ms of a lone request in the
live server here, a fifth of what the box added to a bare onnxruntime loop. `single_file`
reads only that one shape with a few `bytes.find`s: the boundary (maybe after a line break),
one part whose headers are a Content-Disposition naming the field and a file name and at
most a Content-Type, the file, the closing boundary. It returns None for anything else: a
preamble, a second part, other or long part headers, a line break werkzeug would also take
as one, a boundary inside the file. The caller gives those to werkzeug, so every other
form, and every limit on forms (the part count, field sizes), is answered as before.
"""

from __future__ import annotations

from werkzeug.http import parse_options_header

MAX_BOUNDARY = 70  # RFC 2046's longest boundary
# A part's headers longer than this go to werkzeug, whose form limits then decide (a 19 MB
# file name would otherwise be parsed here, and took seconds of CPU).
MAX_HEAD = 4096
PART_HEADERS = frozenset({"content-disposition", "content-type"})


def single_file(body: bytes, boundary: str, field: str) -> bytes | None:
    """The file in form field `field` when `body` is a form of exactly that one file part,
    else None (parse it with a general form parser). Raises nothing."""
    if not 0 < len(boundary) <= MAX_BOUNDARY or not boundary.isascii():
        return None
    delimiter = b"--" + boundary.encode("ascii")
    # RFC 2046 lets the first boundary follow a line break, as werkzeug's own client sends it.
    opening = delimiter + b"\r\n"
    first = 2 if body.startswith(b"\r\n") else 0
    if not body.startswith(opening, first):
        return None
    head = first + len(opening)
    head_end = body.find(b"\r\n\r\n", head, head + MAX_HEAD)
    if head_end < 0 or not _names_file(body[head:head_end], field):
        return None
    start = head_end + 4
    end = body.rfind(b"\r\n" + delimiter + b"--")
    if end < start or body[end + len(delimiter) + 4:] not in (b"", b"\r\n"):
        return None
    # werkzeug ends a part at the boundary after any line break, even a lone \n or \r: a
    # file with the boundary anywhere in it is left to werkzeug, which then decides.
    if body.find(delimiter, start, end) >= 0:
        return None
    return body[start:end]


def _names_file(head: bytes, field: str) -> bool:
    """Whether a part's header block holds only the headers a file part needs, with a
    Content-Disposition of form-data naming `field` and a file name."""
    names = {}
    for line in head.split(b"\r\n"):
        if not line or line[:1] in (b" ", b"\t") or b"\n" in line or b"\r" in line:
            return False  # folded or odd lines: werkzeug's rules, not ours
        try:
            name, colon, value = line.decode("utf-8").partition(":")
        except UnicodeDecodeError:
            return False
        key = name.strip(" \t").lower()
        if not colon or key not in PART_HEADERS or key in names:
            return False
        names[key] = value.strip(" \t")
    if "content-disposition" not in names:
        return False
    disposition, options = parse_options_header(names["content-disposition"])
    return disposition == "form-data" and options.get("name") == field and \
        "filename" in options
