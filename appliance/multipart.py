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

from typing import BinaryIO

from werkzeug.http import parse_options_header

MAX_BOUNDARY = 70  # RFC 2046's longest boundary
# A part's headers longer than this go to werkzeug, whose form limits then decide (a 19 MB
# file name would otherwise be parsed here, and took seconds of CPU).
MAX_HEAD = 4096
PART_HEADERS = frozenset({"content-disposition", "content-type"})


def single_file(stream: BinaryIO, length: int, boundary: str, field: str) -> bytes | None:
    """The file in form field `field` when the `length` bytes of `stream` (seekable, at the
    body's start) are a form of exactly that one file part, else None (seek back to 0 and
    parse it with a general form parser). The part's headers and the closing boundary are
    read on their own, then the file in one read: one copy of it, where reading the body
    and slicing the file out took three (each large buffer is freshly mapped and faulted
    in, appliance/memory.py: 3.8 against 0.7 ms for a 2 MB phone photo). Raises what the
    stream's reads raise (OSError)."""
    if not 0 < len(boundary) <= MAX_BOUNDARY or not boundary.isascii():
        return None
    delimiter = b"--" + boundary.encode("ascii")
    start = _file_start(stream.read(min(length, 2 + len(delimiter) + 2 + MAX_HEAD)),
                        delimiter, field)
    if start is None:
        return None
    closing = b"\r\n" + delimiter + b"--"
    tail_at = max(0, length - len(closing) - 2)
    stream.seek(tail_at)
    tail = stream.read(length - tail_at)
    found = tail.rfind(closing)
    end = tail_at + found
    if found < 0 or end < start or tail[found + len(closing):] not in (b"", b"\r\n"):
        return None
    stream.seek(start)
    data = stream.read(end - start)
    # werkzeug ends a part at the boundary after any line break, even a lone \n or \r: a
    # file with the boundary anywhere in it is left to werkzeug, which then decides.
    if len(data) != end - start or data.find(delimiter) >= 0:
        return None
    return data


def _file_start(head: bytes, delimiter: bytes, field: str) -> int | None:
    """Where the file begins in a body that begins with `head`: after the opening boundary
    (maybe after a line break; RFC 2046 allows it, werkzeug's own client sends it) and a
    file part's headers naming `field`. None for any other start."""
    opening = delimiter + b"\r\n"
    first = 2 if head.startswith(b"\r\n") else 0
    if not head.startswith(opening, first):
        return None
    begin = first + len(opening)
    head_end = head.find(b"\r\n\r\n", begin, begin + MAX_HEAD)
    if head_end < 0 or not _names_file(head[begin:head_end], field):
        return None
    return head_end + 4


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
