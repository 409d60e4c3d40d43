"""PyTorch factories for the converter's `module:factory` input (tests only)."""

import torch
from torch import nn


def tiny_classifier() -> nn.Module:
    """A small conv classifier with four outputs and fixed weights."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))
