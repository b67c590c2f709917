"""Convolutional Block Attention Module."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.errors import DeployKitError
from deploykit.zoo.registry import register


class ChannelAttention(nn.Module):
    """Channel gate: a shared 1x1-conv MLP over global average and global max, summed, sigmoid."""

    def __init__(self, in_planes, ratio=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc1 = nn.Conv2d(in_planes, in_planes // ratio, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Conv2d(in_planes // ratio, in_planes, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def _mlp(self, y: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu1(self.fc1(y)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self._mlp(self.avg_pool(x)) + self._mlp(self.max_pool(x)))


class SpatialAttention(nn.Module):
    """Spatial gate: a k x k conv over the channel-wise [mean, max] maps, sigmoid."""

    def __init__(self, kernel_size=7):
        super().__init__()
        if kernel_size not in (3, 7):
            raise DeployKitError(f"SpatialAttention kernel_size must be 3 or 7, got {kernel_size!r}")
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([x.mean(1, keepdim=True), torch.amax(x, 1, keepdim=True)], 1)  # order [avg, max]
        return self.sigmoid(self.conv1(y))


@register("cbam")
class CBAM(nn.Module):
    """CBAM: channel attention, then spatial attention, each multiplied into the features.

    Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018.

    Input ``x``: float tensor (B, in_planes, H, W). Output: same shape and dtype.
    B, H and W can be dynamic (any H, W >= 1); ``in_planes`` is fixed by the weights.
    ``in_planes // ratio`` is the MLP's hidden width; ``kernel_size`` is 3 or 7.
    """

    def __init__(self, in_planes, ratio=16, kernel_size=7):
        super().__init__()
        self.ca = ChannelAttention(in_planes, ratio)
        self.sa = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * self.ca(x)
        return out * self.sa(out)
