"""Calibration and held-out images, preprocessed with the box's own code.

Images are decoded with `appliance.imaging` and prepared with the bundle's task module, so
the quantizer sees exactly the tensors the box will feed the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from appliance import imaging, tasks
from appliance.bundle import InputSpec
from appliance.errors import ApplianceError
from tools.errors import ConvertError

MIN_CALIBRATION = 4
MIN_HELD_OUT = 4
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class Sample:
    """One preprocessed image and where it came from."""

    name: str
    tensor: np.ndarray


def read_folder(folder: str | Path) -> list[tuple[str, bytes]]:
    """Every file in `folder` (sorted, not recursive) as (name, bytes).

    Raises ConvertError when the folder is missing.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ConvertError(f"image folder {path} does not exist: pass a folder of photos")
    return [(p.name, p.read_bytes()) for p in sorted(path.iterdir()) if p.is_file()]


def prepare(images: Iterable[tuple[str, bytes]], task: str, spec: InputSpec,
            what: str) -> list[Sample]:
    """Decode and preprocess images the way the box will; unreadable files are skipped.

    Raises ConvertError when none can be read.
    """
    module = tasks.get(task)
    samples = []
    for name, data in images:
        try:
            image = imaging.decode(data, MAX_PIXELS, module.decode_hint(spec))
        except ApplianceError:
            continue
        samples.append(Sample(name, module.prepare(image, spec)[0]))
    if not samples:
        raise ConvertError(f"no readable images for {what}: put JPEG, PNG, WebP, BMP or GIF "
                           "photos like the ones the box will see in the folder")
    return samples


def subsample(samples: list[Sample], limit: int) -> list[Sample]:
    """At most `limit` samples, spread evenly over the list (calibration cost is per image)."""
    if len(samples) <= limit:
        return samples
    step = len(samples) / limit
    return [samples[int(i * step)] for i in range(limit)]


def split(samples: list[Sample], held_out: list[Sample] | None) -> tuple[list, list]:
    """Calibration and held-out sets. Without a separate held-out set, every fourth image is
    held out, so calibration never sees what the gate judges.

    Raises ConvertError when either set is below its minimum.
    """
    if held_out is None:
        held_out = samples[3::4]
        samples = [s for i, s in enumerate(samples) if i % 4 != 3]
    if len(held_out) < MIN_HELD_OUT:
        raise ConvertError(f"only {len(held_out)} held-out images; the accuracy gate needs at "
                           f"least {MIN_HELD_OUT}: add photos (or pass --held-out DIR)")
    if len(samples) < MIN_CALIBRATION:
        raise ConvertError(f"only {len(samples)} calibration images; at least "
                           f"{MIN_CALIBRATION} are needed: add photos to the folder")
    return samples, held_out


class Reader(CalibrationDataReader):
    """An onnxruntime CalibrationDataReader over prepared samples (re-iterable)."""

    def __init__(self, input_name: str, samples: list[Sample]) -> None:
        super().__init__()
        self.input_name = input_name
        self.samples = samples
        self._index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._index >= len(self.samples):
            return None
        self._index += 1
        return {self.input_name: self.samples[self._index - 1].tensor}

    def rewind(self) -> None:
        self._index = 0

    def __iter__(self):
        return iter({self.input_name: s.tensor} for s in self.samples)

    def __len__(self) -> int:
        return len(self.samples)
