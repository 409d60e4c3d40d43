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
MAX_VALUES = 2_000_000  # a batch of a few 224x224x3 tensors; about 100 MB parsed
TENSOR_HINT = "send big tensors as binary data (Inference-Header-Content-Length)"


def loads(data: bytes, max_values: int = MAX_VALUES, hint: str = TENSOR_HINT) -> Any:
    """Parse `data` as strict JSON of at most `max_values` values (`hint`: what to do about
    more). Raises BadRequest saying what was wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the JSON body is not UTF-8") from None
    _check_depth(text, max_values, hint)
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # a second fence: the check above should have refused it
        raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None


STRINGS = re.compile(r'"[^"]*"')
NOT_BRACKETS = re.compile(r"[^\[\]]+")
CURLY_AS_SQUARE = str.maketrans("{}", "[]")


def _check_depth(text: str, max_values: int, hint: str) -> None:
    # Linear, and every step in C (str.replace, one regex without backtracking): escapes
    # out, then strings out, then brackets peeled one level a pass. A walk in Python over
    # quotes and backslashes took 2.9 s for 19 MB of backslash-quote pairs.
    text = text.replace("\\\\", "").replace('\\"', "")
    bare = STRINGS.sub('""', text.translate(CURLY_AS_SQUARE))
    _check_size(bare, max_values, hint)
    brackets = NOT_BRACKETS.sub("", bare)
    for _ in range(MAX_DEPTH):
        peeled = brackets.replace("[]", "")
        if len(peeled) == len(brackets):
            break  # nothing more closes
        brackets = peeled
    else:
        if brackets:  # pairs left after MAX_DEPTH levels were peeled
            raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        return
    if "[" * (MAX_DEPTH + 1) in brackets:
        raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    if brackets:
        raise BadRequest("the body is not valid JSON: its brackets do not match")


def _check_size(bare: str, max_values: int, hint: str) -> None:
    # Python holds each value as an object of tens of bytes: 7 million empty lists in 20 MB
    # took 810 MB to parse. Values are counted from the separators and brackets, in C.
    values = bare.count(",") + bare.count("[")
    if values > max_values:
        raise BadRequest(f"the JSON holds about {values} values; at most {max_values}: {hint}")


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
