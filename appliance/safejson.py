"""JSON from strangers: nesting depth, number size and non-standard constants are checked
before and while parsing, so a bomb is a 400, never a 500 (Python's parser would recurse
until it fails, and accepts NaN and thousand-digit numbers)."""

from __future__ import annotations

import json
import re
from typing import Any

from appliance.errors import BadRequest

MAX_DEPTH = 32
MAX_DIGITS = 64


def loads(data: bytes) -> Any:
    """Parse `data` as strict JSON. Raises BadRequest saying what was wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the JSON body is not UTF-8") from None
    _check_depth(text)
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


STRUCTURE = re.compile(r'[\[\]{}"\\]')


def _check_depth(text: str) -> None:
    # Only brackets, quotes and backslashes matter: a tensor of numbers has few of them, so
    # this walks a handful of matches instead of every character of a megabyte body.
    depth, in_string, escaped_at = 0, False, -2
    for match in STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if char == "\\" and escaped_at != at - 1:
                escaped_at = at
            elif char == '"' and escaped_at != at - 1:
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _constant(name: str) -> Any:
    raise BadRequest(f"{name} is not JSON: send numbers only")


def _int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise BadRequest(f"a number in the JSON has {len(text)} digits; at most {MAX_DIGITS}")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_DIGITS:
        raise BadRequest(f"a number in the JSON has {len(text)} characters; at most "
                         f"{MAX_DIGITS}")
    return float(text)
