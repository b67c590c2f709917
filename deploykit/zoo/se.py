"""Squeeze-and-Excitation channel attention."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.zoo.registry import register


@register("se")
class SEAttention(nn.Module):
    """SE: squeeze (global average) then excite (bottleneck MLP + sigmoid) to rescale channels.

    Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (extended in TPAMI 2020).

    Input ``x``: float tensor (B, channel, H, W). Output: same shape and dtype.
    B, H and W can be dynamic (any H, W >= 1); ``channel`` is fixed by the weights.
    state_dict: ``fc.0.weight`` (channel // reduction, channel), ``fc.2.weight`` (channel, channel // reduction).
    """

    def __init__(self, channel=512, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten/unsqueeze instead of view(B, C): no shape values enter the graph
        y = self.fc(self.avg_pool(x).flatten(1))
        return x * y[:, :, None, None]
