"""The accuracy gate: the quantized model against the float model on held-out images.

Each task declares its metrics and their default thresholds (`Task.gate`) and measures them
(`Task.measure`); thresholds can be overridden per conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance import tasks
from tools.errors import ConvertError


@dataclass
class Verdict:
    """Whether the candidate passed, its metrics, and the thresholds it was held to."""

    passed: bool
    metrics: dict[str, float]
    thresholds: dict[str, float]
    failures: list[str] = field(default_factory=list)

    def reason(self) -> str:
        if self.passed:
            return ", ".join(f"{k} {self.metrics[k]:.4g} ≥ {v:g}"
                             for k, v in self.thresholds.items())
        return "; ".join(self.failures)


def thresholds(task: str, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The gate for `task` with `overrides` applied. Raises ConvertError on an unknown key."""
    gate = dict(tasks.get(task).gate)
    for key, value in (overrides or {}).items():
        if key not in gate:
            raise ConvertError(f"--gate {key}: unknown for task {task}; use "
                               f"{', '.join(gate)}")
        gate[key] = float(value)
    return gate


def judge(task: str, reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]],
          output_spec: Mapping[str, Any], gate: Mapping[str, float],
          size: tuple[int, int] = (0, 0)) -> Verdict:
    """Compare the candidate's outputs with the float model's, image by image.

    Each item is one image's list of output tensors; `size` is the model's input (H, W),
    which box decoding needs.
    """
    metrics = tasks.get(task).measure(reference, candidate, output_spec, size)
    failures = [f"{key} {metrics[key]:.4g} is below {limit:g}"
                for key, limit in gate.items() if metrics[key] < limit]
    return Verdict(not failures, metrics, dict(gate), failures)
