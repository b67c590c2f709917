"""Selective Kernel attention."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from deploykit.zoo.registry import register


@register("sk")
class SKAttention(nn.Module):
    """SK: parallel conv-bn-relu branches with different kernels, mixed by a per-channel softmax over branches.

    Li, Wang, Hu, Yang, "Selective Kernel Networks", CVPR 2019.

    Input ``x``: float tensor (B, channel, H, W). Output: same shape and dtype.
    B, H and W can be dynamic (any H, W >= 1; odd kernels keep the size). ``channel`` is fixed by the weights.
    The hidden width is ``d = max(L, channel // reduction)``. ``reduction=8`` is this seed's default
    (External-Attention's copy uses 16); checkpoints depend on it, so set it explicitly.
    """

    def __init__(self, channel=512, kernels=(1, 3, 5, 7), reduction=8, group=1, L=32):
        super().__init__()
        self.d = max(L, channel // reduction)
        self.convs = nn.ModuleList(
            nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(channel, channel, kernel_size=k, padding=k // 2, groups=group)),
                ("bn", nn.BatchNorm2d(channel)),
                ("relu", nn.ReLU()),
            ]))
            for k in kernels
        )
        self.fc = nn.Linear(channel, self.d)
        self.fcs = nn.ModuleList(nn.Linear(self.d, channel) for _ in kernels)
        self.softmax = nn.Softmax(dim=0)  # over the branch axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([conv(x) for conv in self.convs], 0)  # split: (K, B, C, H, W)
        z = self.fc(feats.sum(0).mean((2, 3)))  # fuse, global average: (B, d)
        logits = torch.stack([fc(z) for fc in self.fcs], 0)  # (K, B, C)
        weights = self.softmax(logits[..., None, None])  # select: (K, B, C, 1, 1)
        return (weights * feats).sum(0)
