"""What other software's detector protocols share (DeepStack, DOODS, Frigate's zmq): the
bundle a request runs and its answer as plain detections, best first.

The protocols themselves live in `appliance/api/deepstack.py`, `appliance/api/doods.py` and
`appliance/zmqdetector.py`; none of them runs a model any other way than `pipeline` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from appliance.engine import Runner
from appliance.errors import BadRequest
from appliance.pipeline import Answer

DETECTORS = ("detect", "classify")  # the tasks whose answers are labelled things
# Lines of a labels file that name no class (TensorFlow's COCO file keeps ids with these).
PLACEHOLDERS = frozenset({"", "background", "N/A", "???"})


@dataclass(frozen=True)
class Detection:
    """One labelled thing: its score (0-1) and box (x0, y0, x1, y1) in the image's pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]


def runner(registry, name: str, tasks: Iterable[str] = DETECTORS, route: str = "") -> Runner:
    """The loaded bundle `name`, which must be of one of `tasks`. Raises NotFound when no
    such bundle is installed, BadRequest naming its task when it is of another."""
    found = registry.get(name)
    task = found.bundle.manifest.task
    wanted = tuple(tasks)
    if task not in wanted:
        raise BadRequest(f"model {name!r} is a {task} model; {route or 'this route'} runs "
                         f"{' or '.join(wanted)} models")
    return found


def names(registry, tasks: Iterable[str] = DETECTORS) -> list[str]:
    """The installed bundles of `tasks`, by name."""
    wanted = set(tasks)
    return sorted(name for name, found in registry.runners().items()
                  if found.bundle.manifest.task in wanted)


def detections(answer: Answer) -> list[Detection]:
    """The answer's labelled things, best first: a detector's boxes, or a classifier's
    labels each with the whole image as its box."""
    body = answer.result.body
    if "detections" in body:
        found = [Detection(d["label"], float(d["score"]), tuple(d["box"]))
                 for d in body["detections"]]
    else:
        width, height = answer.size
        whole = (0.0, 0.0, float(width), float(height))
        found = [Detection(p["label"], float(p["score"]), whole)
                 for p in body.get("predictions", [])]
    return sorted(found, key=lambda d: -d.score)


def threshold_option(task: str) -> str:
    """The query option a task's answer is thresholded with ('' when it has none: a
    classifier's labels are cut after the answer instead)."""
    return "threshold" if task == "detect" else ""


def labels(found: Runner) -> list[str]:
    """The classes a bundle can answer, in its labels file's order, once each."""
    return list(dict.fromkeys(label for label in found.bundle.labels
                              if label not in PLACEHOLDERS))
