"""One inference from image bytes to a task result: decode, preprocess, run, postprocess.

Shared by the HTTP API and `appliance infer`, so both give the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from PIL import Image

from appliance import imaging, tasks
from appliance.decodebudget import DecodeBudget
from appliance.engine import Runner
from appliance.errors import ApplianceError, ModelOutputError
from appliance.tasks.base import Context, Result, Task
from appliance.tasks.preprocess import for_source


@dataclass
class Answer:
    """A task result with the bundle's identity and the time each stage took."""

    result: Result
    model: str
    version: str
    timing_ms: dict[str, float]
    options: dict[str, Any]
    size: tuple[int, int] = (0, 0)  # the input image's width and height, in pixels

    def body(self) -> dict[str, Any]:
        """The JSON body: identity, the task's fields and the timings."""
        return {"model": self.model, "version": self.version, **self.result.body,
                "timing_ms": self.timing_ms}


def infer(runner: Runner, data: bytes, query: Mapping[str, str], max_pixels: int,
          budget: DecodeBudget | None = None) -> Answer:
    """Run `runner`'s model on image bytes with the request's options.

    `budget` bounds the memory the decode holds (None: unbounded, for the CLI).
    Raises BadRequest/UnsupportedMedia/PayloadTooLarge for bad input (PayloadTooLarge also
    for an image whose decode would hold more than `budget` allows one), Busy/Unavailable
    when the model, or the budget, cannot take it now.
    """
    bundle = runner.bundle
    task = tasks.get(bundle.manifest.task)
    opts = task.parse(query, bundle)
    clock = _Clock()
    with runner.admit():
        image, full_size = imaging.decode_sized(data, max_pixels,
                                                task.decode_hint(bundle.manifest.input),
                                                budget)
        clock.lap("decode")
        return _run(runner, task, image, full_size, opts, clock)


def infer_image(runner: Runner, image: Image.Image,
                query: Mapping[str, str] | None = None) -> Answer:
    """Run `runner`'s model on a decoded RGB picture (a camera frame)."""
    task = tasks.get(runner.bundle.manifest.task)
    opts = task.parse(query or {}, runner.bundle)
    clock = _Clock()
    clock.lap("decode")
    with runner.admit():
        return _run(runner, task, image, image.size, opts, clock)


def _run(runner: Runner, task: Task, image: Image.Image, full_size: tuple[int, int],
         opts: dict[str, Any], clock: _Clock) -> Answer:
    bundle = runner.bundle
    deadline = runner.deadline()  # the request's: its other graphs' runs share it
    tensor, geometry = task.prepare(image, bundle.manifest.input)
    geometry = for_source(geometry, full_size)
    clock.lap("preprocess")
    outputs = runner.run(tensor)
    clock.lap("inference")
    ctx = Context(bundle, geometry, opts, image=image, names=runner.output_names,
                  graph=partial(_graph, runner, deadline) if bundle.manifest.graphs else None)
    try:
        result = task.postprocess(outputs, ctx)
    except ApplianceError:
        raise  # BadRequest and the engine's errors say what they are already
    except ValueError as exc:
        raise ModelOutputError(f"model {bundle.name} gave outputs its task cannot read: "
                               f"{exc}; the bundle is broken: reinstall or remove it") from None
    clock.lap("postprocess")
    return Answer(result, bundle.name, bundle.manifest.version, clock.laps, opts,
                  tuple(full_size))


def _graph(runner: Runner, deadline: float, name: str, tensor) -> list:
    return runner.run_graph(name, tensor, deadline)


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000, 3)
        self._last = now
