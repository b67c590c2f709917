"""Efficient Channel Attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from deploykit.zoo.registry import register


def adaptive_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's k = |log2(C) / gamma + b / gamma| rounded to odd; at least 3 (as timm does)."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return max(t if t % 2 else t + 1, 3)


@register("eca")
class ECAAttention(nn.Module):
    """ECA: global average, a 1D conv across neighbouring channels, sigmoid, rescale the channels.

    Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
    Networks", CVPR 2020.

    Input ``x``: float tensor (B, C, H, W). Output: same shape and dtype.
    B, H and W can be dynamic (any H, W >= 1). The weights (``conv``: Conv1d(1, 1, k) with bias) do not
    depend on C, so C could be dynamic too.
    ``kernel_size`` is the seed's fixed k. Passing ``channels`` instead picks the paper's adaptive k for
    that C and overrides ``kernel_size`` (timm's ``EcaModule`` habit); the default keeps the seed's behaviour.
    """

    def __init__(self, kernel_size=3, channels: int | None = None):
        super().__init__()
        if channels is not None:
            kernel_size = adaptive_kernel_size(channels)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gap(x).squeeze(-1).transpose(1, 2)  # (B, C, 1, 1) -> (B, 1, C): channels as a sequence
        y = self.sigmoid(self.conv(y))
        return x * y.transpose(1, 2).unsqueeze(-1)
