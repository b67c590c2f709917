"""MSAF: multi-scale attention fusion of two feature maps (DSNet)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deploykit.zoo.registry import register


def _bottleneck(channels: int, inter_channels: int, pool: int | tuple[int, int] | None) -> nn.Sequential:
    """[pool ->] 1x1 conv -> BN -> ReLU -> 1x1 conv -> BN (the pool, if any, is index 0: keys follow the seed)."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(pool)] if pool is not None else []
    layers += [
        nn.Conv2d(channels, inter_channels, kernel_size=1),
        nn.BatchNorm2d(inter_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(inter_channels, channels, kernel_size=1),
        nn.BatchNorm2d(channels),
    ]
    return nn.Sequential(*layers)


@register("msaf")
class MSAF(nn.Module):
    """Multi-Scale Attention Fusion: a sigmoid gate from local, 4x4, 8x8 and global context blends two maps.

    Zilu Guo, Liuyang Bian, Hu Wei, Jingyu Li, Huasheng Ni, Xuan Huang,
    "DSNet: A Novel Way to Use Atrous Convolutions in Semantic Segmentation", IEEE TCSVT 2024
    (arXiv:2406.03702, code: github.com/takaniwa/DSNet).

    ``forward(x, residual)``: two float tensors (B, channels, H, W) -> one tensor of the same shape,
    ``2 * x * w + 2 * residual * (1 - w)`` with ``w = sigmoid(local + global + up(ctx4x4) + up(ctx8x8))``.
    B, H and W can all be dynamic, with no divisibility: the context branches use adaptive average
    pooling to fixed grids and nearest upsampling back to (H, W). These pools are non-global, so an
    exporter must compute their windows from the runtime size (a fixed kernel baked at export is wrong
    at any other size).

    ``dsnet=True`` adds DSNet's network variant: a third context branch ``context3`` (16x16 grid),
    registered between ``context2`` and ``global_att`` so DSNet checkpoints load with ``strict=True``.
    """

    def __init__(self, channels=64, r=4, dsnet=False):
        super().__init__()
        inter_channels = int(channels // r)
        self.local_att = _bottleneck(channels, inter_channels, None)
        self.context1 = _bottleneck(channels, inter_channels, (4, 4))
        self.context2 = _bottleneck(channels, inter_channels, (8, 8))
        self.context3 = _bottleneck(channels, inter_channels, (16, 16)) if dsnet else None
        self.global_att = _bottleneck(channels, inter_channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        xa = x + residual
        contexts = [self.context1, self.context2] + ([self.context3] if self.context3 is not None else [])
        # Summed in the seed's order (local, global, then the grids) so results match it bit for bit.
        xlg = self.local_att(xa) + self.global_att(xa)
        for context in contexts:
            xlg = xlg + F.interpolate(context(xa), size=size, mode="nearest")
        wei = self.sigmoid(xlg)
        return 2 * x * wei + 2 * residual * (1 - wei)
