"""The declared task interface: what every task must say and do, and what they share.

A task is one class deriving from `Task` and one line in `appliance.tasks`. From it the box
derives everything that depends on the task: the manifest's output schema, the query options
(parsed here, listed in the OpenAPI document), how an image becomes the model's input, how
the outputs become the answer, how the gallery screen draws it, the converter's `--task`
choices and its accuracy gate. `check(task)` says what a task left out.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from appliance.errors import BadRequest
from appliance.tasks.preprocess import Geometry, decode_hint, prepare

if TYPE_CHECKING:
    from appliance.bundle import Bundle, InputSpec
    from appliance.schema import Field

# A value an option takes from the bundle (the number of labels, the manifest's default).
Bound = Any | Callable[["Bundle"], Any]


@dataclass
class Result:
    """A task's answer: a JSON body, or an image (with JSON fields kept for `format=json`)."""

    body: dict[str, Any] = field(default_factory=dict)
    image: Image.Image | None = None


@dataclass
class Context:
    """What postprocessing may use besides the outputs.

    `image` is the decoded picture the tensor was made from (None where a caller has only
    tensors: the converter's gate); `graph` runs one of the bundle's other graphs by name
    (None for a single-graph bundle).
    """

    bundle: Bundle
    geometry: Geometry
    opts: Mapping[str, Any]
    image: Image.Image | None = None
    graph: Callable[[str, np.ndarray], list[np.ndarray]] | None = None
    names: list[str] = field(default_factory=list)  # the model's output names, in order

    def output(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The output the manifest's `output.tensor` names, or the first when it names none.
        Raises ValueError naming the outputs the model has."""
        tensor = self.bundle.manifest.output.get("tensor", "")
        if not tensor:
            return outputs[0]
        if tensor not in self.names:
            raise ValueError(f"output.tensor names {tensor!r}, but the model's outputs are "
                             f"{', '.join(self.names) or 'unknown'}")
        return outputs[self.names.index(tensor)]


@dataclass(frozen=True)
class Option:
    """One query option: its type, its help, its default and range (values, or functions of
    the bundle for those that depend on it)."""

    name: str
    kind: type  # int, float or str
    help: str
    default: Bound
    low: Bound = None
    high: Bound = None
    choices: tuple[str, ...] = ()

    def parse(self, text: Any, bundle: Bundle) -> Any:
        """The option's value from its query text. Raises BadRequest naming the option and
        what it accepts."""
        if self.kind is str:
            if text not in self.choices:
                raise BadRequest(f"option {self.name} must be one of {', '.join(self.choices)}, "
                                 f"got {text!r}")
            return text
        value = self._number(text)
        low, high = _resolve(self.low, bundle), _resolve(self.high, bundle)
        if (low is not None and value < low) or (high is not None and value > high):
            raise BadRequest(f"option {self.name} must be between {low:g} and {high:g}, got "
                             f"{value:g}")
        return value

    def _number(self, text: Any) -> int | float:
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            what = "a whole number" if self.kind is int else "a number"
            raise BadRequest(f"option {self.name} must be {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"option {self.name} must be a finite number, got {text!r}")
        return value

    def schema(self) -> dict[str, Any]:
        """The option's JSON schema for the OpenAPI document (fixed bounds only)."""
        if self.kind is str:
            return {"type": "string", "enum": list(self.choices)}
        schema: dict[str, Any] = {"type": "integer" if self.kind is int else "number"}
        for key, bound in (("minimum", self.low), ("maximum", self.high)):
            if bound is not None and not callable(bound):
                schema[key] = bound
        return schema


def _resolve(bound: Bound, bundle: Bundle) -> Any:
    return bound(bundle) if callable(bound) else bound


class Task(ABC):
    """One kind of model. Subclasses set every class attribute and implement every abstract
    method; `check` says what one left out."""

    name: ClassVar[str]
    summary: ClassVar[str]  # what it answers, one line
    output: ClassVar[Mapping[str, Field]]  # the manifest's `output` schema
    needs_labels: ClassVar[bool]
    options: ClassVar[tuple[Option, ...]]
    answer: ClassVar[Mapping[str, dict[str, Any]]]  # JSON fields it answers: their schemas
    images: ClassVar[tuple[str, ...]] = ()  # image formats it answers with, if any
    gate: ClassVar[Mapping[str, float]]  # the converter's metrics and default thresholds
    graphs: ClassVar[tuple[str, ...]] = ()  # names of the other graphs its bundles hold
    # Its main graph's input changes shape with each picture: served by one session with no
    # arena (an arena keeps the largest activations it ever held).
    varying_input: ClassVar[bool] = False

    def decode_hint(self, spec: InputSpec) -> tuple[int, int]:
        """The smallest (width, height) the decoder must keep for this input."""
        return decode_hint(spec)

    def prepare(self, image: Image.Image, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """The model's input tensor for an RGB picture, and how the picture maps onto it."""
        return prepare(image, spec)

    def check_output(self, spec: Mapping[str, Any]) -> str | None:
        """What is wrong with a checked `output` section as a whole ("field: problem"), or
        None; fields that depend on each other are checked here."""
        return None

    def parse(self, query: Mapping[str, str], bundle: Bundle) -> dict[str, Any]:
        """The request's options with defaults filled in. Raises BadRequest for an unknown
        option or a value out of its range."""
        known = {option.name: option for option in self.options}
        for key in query:
            if key not in known:
                names = ", ".join(known) or "none"
                raise BadRequest(f"unknown option {key!r} for this model: its options are "
                                 f"{names}")
        return {name: option.parse(query[name], bundle) if name in query
                else _resolve(option.default, bundle) for name, option in known.items()}

    @abstractmethod
    def postprocess(self, outputs: list[np.ndarray], ctx: Context) -> Result:
        """The answer from the model's outputs. Raises BadRequest for an input the task
        cannot answer, ValueError for outputs that do not match the manifest."""

    @abstractmethod
    def draw(self, size: tuple[int, int], frame: Image.Image, body: Mapping[str, Any],
             output: Image.Image | None, backdrop: Image.Image | None) -> Image.Image:
        """The gallery screen for one result (the caption strip is added by the caller)."""

    @abstractmethod
    def measure(self, reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]],
                spec: Mapping[str, Any], size: tuple[int, int]) -> dict[str, float]:
        """The gate's metrics: the candidate's outputs against the float model's, image by
        image (each item one image's outputs); `size` is the model's input (H, W)."""


REQUIRED = ("name", "summary", "output", "needs_labels", "options", "answer", "gate")


def check(task: Task) -> list[str]:
    """What `task` leaves out of the interface, as messages (empty when complete)."""
    missing = [f"{type(task).__name__} sets no {attr}" for attr in REQUIRED
               if not hasattr(task, attr)]
    if missing:
        return missing
    problems = []
    if not task.gate:
        problems.append(f"{task.name}: the gate has no metric")
    if not task.answer and not task.images:
        problems.append(f"{task.name}: answers neither JSON fields nor images")
    if task.needs_labels and "labels" not in task.output:
        problems.append(f"{task.name}: needs labels but its output schema has no `labels`")
    problems += [f"{task.name}: option {o.name} has no help" for o in task.options if not o.help]
    return problems


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """Apply a manifest's activation to a vector of logits."""
    if activation == "softmax":
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    return logits

