"""A small strict checker for JSON objects: declared fields only, each with its type.

Used for bundle manifests so that every error names the file and the field path. Every
string has a length cap (DEFAULT_MAX_LENGTH unless its field says) and no control characters
(a newline only where the field allows several lines): manifest text ends up in HTTP
headers, image metadata and on the screen, and a 200 KB author once stalled the kiosk.
Letters of any script are welcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], str | None]
DEFAULT_MAX_LENGTH = 256
SHOWN = 60  # characters of a bad value quoted back in an error message
# C0 and C1 controls, line and paragraph separators, and the bidirectional overrides and
# isolates that can make text on the screen read differently from what it says.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029"
                                 "\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Field:
    """One field: its JSON type(s), whether it is required, an extra check, a default, and
    for a string its longest length and whether it may hold newlines."""

    kind: type | tuple[type, ...]
    required: bool = True
    check: Check | None = None
    default: Any = None
    max_length: int = DEFAULT_MAX_LENGTH
    multiline: bool = False


def text_problem(value: str, max_length: int, multiline: bool = False) -> str | None:
    """What is wrong with `value` as text of at most `max_length` characters (one line
    unless `multiline`), or None."""
    if len(value) > max_length:
        return f"is {len(value)} characters long, the limit is {max_length}: shorten it"
    bad = (CONTROL_BUT_NEWLINE if multiline else CONTROL).search(value)
    if bad:
        kind = "a newline or control character" if not multiline else "a control character"
        return (f"has {kind} (U+{ord(bad.group()):04X}) at character {bad.start() + 1}: "
                f"use {'plain text' if multiline else 'one line of plain text'}")
    return None


def shown(value: Any) -> str:
    """`value` as quoted in an error message: its repr, cut to SHOWN characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


def one_of(*choices: str) -> Check:
    """A check that the value is one of `choices`."""
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def list_of(kind: type | tuple[type, ...], length: int | None = None) -> Check:
    """A check that the value is a list of `kind`, optionally of a fixed length."""

    def check(value: list) -> str | None:
        if length is not None and len(value) != length:
            return f"must have {length} items"
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            return "has an item of the wrong type"
        return None

    return check


def positive(value: int | float) -> str | None:
    """A check that a number is above zero."""
    return None if value > 0 else "must be above 0"


def validate(data: Any, fields: dict[str, Field], where: str) -> dict[str, Any]:
    """Check `data` against `fields` and return it with defaults filled in.

    Raises ValueError("WHERE.FIELD: what is wrong") on the first problem found.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be an object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(fields)})")
    result = {}
    for name, spec in fields.items():
        result[name] = _field_value(data, name, spec, f"{where}.{name}")
    return result


def _field_value(data: dict, name: str, spec: Field, path: str) -> Any:
    if name not in data:
        if spec.required:
            raise ValueError(f"{path}: required field is missing")
        return spec.default
    value = data[name]
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"{path}: must be {_names(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ValueError(f"{path}: must be {_names(kinds)}, got {type(value).__name__}")
    if isinstance(value, str):
        problem = text_problem(value, spec.max_length, spec.multiline)
        if problem:
            raise ValueError(f"{path}: {problem} (got {shown(value)})")
    problem = spec.check(value) if spec.check else None
    if problem:
        raise ValueError(f"{path}: {problem} (got {shown(value)})")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    words = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "an object"}
    return " or ".join(words.get(k, k.__name__) for k in kinds)
