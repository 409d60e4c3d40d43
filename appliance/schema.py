"""A small strict checker for JSON objects: declared fields only, each with its type.

Used for bundle manifests so that every error names the file and the field path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Field:
    """One field: its JSON type(s), whether it is required, an extra check, a default."""

    kind: type | tuple[type, ...]
    required: bool = True
    check: Check | None = None
    default: Any = None


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
    problem = spec.check(value) if spec.check else None
    if problem:
        raise ValueError(f"{path}: {problem} (got {value!r})")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    words = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "an object"}
    return " or ".join(words.get(k, k.__name__) for k in kinds)
