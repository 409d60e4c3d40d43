"""A taught model's head: nearest class mean on L2-normalised embeddings, in numpy.

A taught model (appliance.teach) is an embedding model's graph plus this head. Each class is
the mean of its examples' unit embeddings, itself normalised; a picture is scored by its
cosine similarity to each class mean, and "none of these" (the bundle's last label) is one
more candidate whose similarity is the head's `threshold`: a softmax over all of them at the
head's `temperature` gives the scores, so the unknown answer wins exactly when the picture
is less similar to every class than the threshold.

The threshold is learnt from the examples' own spread: a low percentile (PERCENTILE) of each
example's similarity to its own class's mean without it (leave-one-out), so about one
example in twenty would itself count as unknown. The temperature is the one that best
predicts each example's class from the others (least leave-one-out log loss). Both need a
class with two examples or more; until then the unknown answer is off (threshold -1) and
the temperature is DEFAULT_TEMPERATURE.

`head.npz` holds numpy arrays only (means, threshold, temperature), read with
allow_pickle=False.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILE = 5.0
DEFAULT_TEMPERATURE = 0.05
NO_THRESHOLD = -1.0  # never below: the unknown answer is off
TEMPERATURES = np.geomspace(0.02, 1.0, 40)  # below 0.02: certainty from a few
MAX_CLASSES = 1000
MAX_DIM = 65536
KEYS = {"means", "threshold", "temperature"}
CONFUSED = 0.2  # a class taken for another this often or more gets a warning


@dataclass(frozen=True)
class Head:
    """Class means (K x D, unit rows), the unknown threshold and the softmax temperature."""

    means: np.ndarray
    threshold: float
    temperature: float

    @property
    def classes(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def probabilities(self, embedding: np.ndarray) -> np.ndarray:
        """Scores of the K classes and, last, of "none of these", summing to 1.
        Raises ValueError when the embedding's size is not the head's."""
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.size != self.dim:
            raise ValueError(f"the head's class means have {self.dim} numbers, the model "
                             f"gave {vector.size}")
        sims = self.means @ unit(vector)
        return softmax(np.append(sims, self.threshold) / self.temperature)

    def to_bytes(self) -> bytes:
        """The head as an uncompressed .npz."""
        buffer = io.BytesIO()
        np.savez(buffer, means=self.means.astype(np.float32),
                 threshold=np.float32(self.threshold), temperature=np.float32(self.temperature))
        return buffer.getvalue()


def load(source: Any) -> Head:
    """A head from an .npz file or file object, checked. Raises ValueError saying what is
    wrong (not an .npz of arrays, unknown or missing arrays, shapes, values)."""
    try:
        with np.load(source, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("is one array, not an .npz of arrays")
            if set(data.files) != KEYS:
                raise ValueError(f"holds {', '.join(sorted(data.files)) or 'nothing'}; a head "
                                 f"holds exactly {', '.join(sorted(KEYS))}")
            means, threshold, temperature = (data["means"], data["threshold"],
                                             data["temperature"])
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"is not a head: {exc}") from None
    return _checked(means, threshold, temperature)


def _checked(means: np.ndarray, threshold: np.ndarray, temperature: np.ndarray) -> Head:
    if means.dtype.kind != "f" or means.ndim != 2:
        raise ValueError(f"means must be a 2-d float array, got {means.dtype} {means.shape}")
    if not (1 <= means.shape[0] <= MAX_CLASSES and 1 <= means.shape[1] <= MAX_DIM):
        raise ValueError(f"means has shape {means.shape}: 1-{MAX_CLASSES} classes of "
                         f"1-{MAX_DIM} numbers")
    for name, value in (("threshold", threshold), ("temperature", temperature)):
        if value.shape != () or value.dtype.kind != "f":
            raise ValueError(f"{name} must be one float")
    if not np.isfinite(means).all():
        raise ValueError("means holds a value that is not finite")
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold {float(threshold)} is not a similarity (-1 to 1)")
    if not 1e-4 <= float(temperature) <= 100.0:
        raise ValueError(f"temperature {float(temperature)} is outside 0.0001 to 100")
    return Head(means.astype(np.float32), float(threshold), float(temperature))


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to length 1; a zero row stays zero."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Fit:
    """A fitted head and what leave-one-out says about it (report.json's fields)."""

    head: Head
    report: dict[str, Any]


def fit(embeddings: np.ndarray, targets: np.ndarray, names: list[str],
        threshold: float | None = None) -> Fit:
    """Fit the head on `embeddings` (N x D) of classes `targets` (N ints indexing `names`);
    every class needs one example or more. `threshold` fixes the unknown threshold (None:
    learnt). Raises ValueError for a class without examples."""
    x = unit(np.asarray(embeddings, dtype=np.float64))
    targets = np.asarray(targets)
    counts = np.bincount(targets, minlength=len(names))
    if (counts == 0).any():
        empty = names[int(np.argmin(counts))]
        raise ValueError(f"class {empty!r} has no examples")
    sums = np.zeros((len(names), x.shape[1]))
    np.add.at(sums, targets, x)
    means = unit(sums)
    sims, own, measured = _leave_one_out(x, targets, sums, counts)
    learnt = threshold is None
    if learnt:
        threshold = float(np.percentile(own[measured], PERCENTILE)) if measured.any() \
            else NO_THRESHOLD
    temperature = _temperature(sims[measured], targets[measured], threshold)
    # As head.npz stores them (float32), so that what serves here serves everywhere.
    head = Head(means.astype(np.float32), float(np.float32(threshold)),
                float(np.float32(temperature)))
    report = _report(sims, targets, measured, counts, names, head, learnt)
    return Fit(head, report)


def _leave_one_out(x, targets, sums, counts):
    """Each example's similarity to every class mean, its own class's taken without it;
    its similarity to that mean; and whether it could be measured (its class has another
    example)."""
    sims = x @ unit(sums).T
    rest = sums[targets] - x
    own = np.einsum("nd,nd->n", x, unit(rest))
    measured = counts[targets] > 1
    sims[np.arange(len(x)), targets] = np.where(measured, own, sims[np.arange(len(x)), targets])
    return sims, own, measured


def _temperature(sims: np.ndarray, targets: np.ndarray, threshold: float) -> float:
    """The temperature with the least leave-one-out log loss (unknown included)."""
    if len(sims) == 0 or sims.shape[1] < 2:
        return DEFAULT_TEMPERATURE
    logits = np.concatenate([sims, np.full((len(sims), 1), threshold)], axis=1)
    rows = np.arange(len(sims))
    losses = []
    for t in TEMPERATURES:
        scaled = logits / t
        top = scaled.max(axis=1)
        log_norm = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        losses.append(float(np.mean(log_norm - scaled[rows, targets])))
    return float(TEMPERATURES[int(np.argmin(losses))])


def _report(sims, targets, measured, counts, names, head: Head, learnt: bool) -> dict:
    """Leave-one-out accuracy per class and its confusions, with warnings that say what
    to add."""
    predicted = np.argmax(sims, axis=1)
    classes, warnings = {}, []
    for k, name in enumerate(names):
        mine = measured & (targets == k)
        taken = {names[j]: int(n) for j, n in enumerate(np.bincount(
            predicted[mine], minlength=len(names))) if j != k and n}
        accuracy = float(np.mean(predicted[mine] == k)) if mine.any() else None
        classes[name] = {"examples": int(counts[k]), "loo_accuracy": accuracy,
                         "taken_for": taken}
        warnings += _class_warnings(name, int(counts[k]), int(mine.sum()), taken)
    if not measured.any():
        warnings.insert(0, "one example per class: the model answers, but its accuracy "
                        "cannot be measured and it never answers 'none of these'; add a "
                        "second example to each class")
    return {
        "examples": len(targets), "classes": classes,
        "loo_accuracy": float(np.mean(predicted[measured] == targets[measured]))
        if measured.any() else None,
        "threshold": round(head.threshold, 6),
        "threshold_from": _threshold_from(head.threshold, learnt),
        "temperature": round(head.temperature, 6),
        "warnings": warnings,
    }


def _threshold_from(threshold: float, learnt: bool) -> str:
    if not learnt:
        return "setting teach.threshold"
    if threshold == NO_THRESHOLD:
        return "off: no class has two examples"
    return (f"learnt: the {PERCENTILE:g}th percentile of the examples' similarity to their "
            "own class (leave-one-out)")


def _class_warnings(name: str, count: int, measured: int, taken: dict[str, int]) -> list[str]:
    if count == 1:
        return [f"{name} has one example: add more to measure it"]
    return [f"{name} is often taken for {other} ({n} of {measured}): add examples of both"
            for other, n in taken.items() if n >= CONFUSED * measured]
