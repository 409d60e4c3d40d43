"""SSD anchors and box decoding as the TensorFlow object detection API does them (pure numpy).

The detect task's `ssd-tf` box format reads a TF SSD graph cut at its raw heads (box
encodings and class logits, before `Postprocessor/`): the anchors come from the manifest's
parameters of TF's `ssd_anchor_generator` (`create_ssd_anchors` and
`MultipleGridAnchorGenerator`), the boxes from its `FasterRcnnBoxCoder`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np


def layer_specs(feature_maps: Sequence[int], min_scale: float, max_scale: float,
                aspect_ratios: Sequence[float], interpolated_ratio: float,
                reduce_lowest: bool) -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) of each anchor in a cell, per layer, as `create_ssd_anchors`
    lists them: scales evenly from min to max, the lowest layer reduced to three boxes, and
    one more box per cell between this layer's scale and the next's."""
    layers = len(feature_maps)
    scales = [min_scale + (max_scale - min_scale) * i / max(layers - 1, 1)
              for i in range(layers)] + [1.0]
    specs = []
    for layer in range(layers):
        scale, following = scales[layer], scales[layer + 1]
        if layer == 0 and reduce_lowest:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        cell = [(scale, float(ratio)) for ratio in aspect_ratios]
        if interpolated_ratio > 0:
            cell.append((math.sqrt(scale * following), interpolated_ratio))
        specs.append(cell)
    return specs


def grid_anchors(size: int, cell: list[tuple[float, float]]) -> np.ndarray:
    """One square layer's anchors (size * size * len(cell), 4) as (ymin, xmin, ymax, xmax)
    fractions: cell by cell, row-major, each cell's boxes in `cell` order."""
    scales, ratios = np.array(cell, np.float64).T
    heights, widths = scales / np.sqrt(ratios), scales * np.sqrt(ratios)
    centres = (np.arange(size) + 0.5) / size
    y, x = np.meshgrid(centres, centres, indexing="ij")
    y, x = y.reshape(-1, 1), x.reshape(-1, 1)
    corners = np.stack([y - heights / 2, x - widths / 2, y + heights / 2, x + widths / 2],
                       axis=-1)
    return corners.reshape(-1, 4)


@lru_cache(maxsize=8)
def _anchors(feature_maps: tuple[int, ...], min_scale: float, max_scale: float,
             aspect_ratios: tuple[float, ...], interpolated_ratio: float,
             reduce_lowest: bool) -> np.ndarray:
    specs = layer_specs(feature_maps, min_scale, max_scale, aspect_ratios, interpolated_ratio,
                        reduce_lowest)
    grid = np.concatenate([grid_anchors(size, cell)
                           for size, cell in zip(feature_maps, specs, strict=True)])
    grid = grid.astype(np.float32)
    grid.setflags(write=False)  # shared by every request through the cache
    return grid


def anchors(spec: Mapping[str, Any]) -> np.ndarray:
    """The anchors (N, 4) as (ymin, xmin, ymax, xmax) fractions of the input, from a
    manifest's `output` (cached: computed once per set of parameters)."""
    return _anchors(tuple(spec["feature_maps"]), float(spec["min_scale"]),
                    float(spec["max_scale"]), tuple(float(r) for r in spec["aspect_ratios"]),
                    float(spec["interpolated_scale_aspect_ratio"]),
                    bool(spec["reduce_boxes_in_lowest_layer"]))


def decode(codes: np.ndarray, grid: np.ndarray, scale_factors: Sequence[float]) -> np.ndarray:
    """FasterRcnnBoxCoder's decode: encodings (N, 4) (ty, tx, th, tw) against anchors (N, 4)
    (ymin, xmin, ymax, xmax) to boxes (N, 4) (ymin, xmin, ymax, xmax), all in float32."""
    heights = grid[:, 2] - grid[:, 0]
    widths = grid[:, 3] - grid[:, 1]
    y_anchor = grid[:, 0] + heights / 2
    x_anchor = grid[:, 1] + widths / 2
    ty, tx, th, tw = (codes / np.asarray(scale_factors, np.float32)).T
    with np.errstate(over="ignore", invalid="ignore"):  # a broken model's huge sizes: inf
        height, width = np.exp(th) * heights, np.exp(tw) * widths
    y = ty * heights + y_anchor
    x = tx * widths + x_anchor
    return np.stack([y - height / 2, x - width / 2, y + height / 2, x + width / 2], axis=1)
