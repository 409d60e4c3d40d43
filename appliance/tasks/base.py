"""What every task shares: the result type and the option parsing helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from appliance.errors import BadRequest


@dataclass
class Result:
    """A task's answer: a JSON body, or an image (with JSON fields kept for `format=json`)."""

    body: dict[str, Any] = field(default_factory=dict)
    image: Image.Image | None = None


def parse_options(query: Mapping[str, str], known: dict[str, Any]) -> dict[str, str]:
    """Check that `query` only names `known` options and return them with defaults filled in.

    Raises BadRequest naming an unknown option and the known ones.
    """
    for key in query:
        if key not in known:
            names = ", ".join(known) or "none"
            raise BadRequest(f"unknown option {key!r} for this model: its options are {names}")
    return {key: query.get(key, default) for key, default in known.items()}


def int_option(name: str, text: Any, low: int, high: int) -> int:
    """Parse an integer option within [low, high]. Raises BadRequest saying the range."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise BadRequest(f"option {name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"option {name} must be between {low} and {high}, got {value}")
    return value


def choice_option(name: str, text: Any, choices: tuple[str, ...]) -> str:
    """Parse an option that must be one of `choices`. Raises BadRequest listing them."""
    if text not in choices:
        raise BadRequest(f"option {name} must be one of {', '.join(choices)}, got {text!r}")
    return text
