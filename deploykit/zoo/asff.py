"""ASFF: adaptively spatial feature fusion of three pyramid levels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deploykit.zoo.registry import register


def autopad(k, p=None):
    """'Same' padding for an odd kernel unless ``p`` is given."""
    if p is None:
        p = k // 2 if isinstance(k, int) else [v // 2 for v in k]
    return p


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> SiLU, as in YOLOv5."""

    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU() if act is True else (act if isinstance(act, nn.Module) else nn.Identity())

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


@register("asff")
class ASFF(nn.Module):
    """Adaptively Spatial Feature Fusion.

    Liu, Huang, Wang, "Learning Spatial Fusion for Single-Shot Object Detection", arXiv:1911.09516, 2019.

    Level channels are ``[1024, 512, 256] * multiplier`` for levels 0 (smallest map, stride 4x),
    1 (stride 2x) and 2 (largest map, stride 1x). All three maps are brought to this module's
    ``level``: level 0 by stride-2 convs (and a 3x3/2 max pool), level 1/2 by 1x1 compression and
    nearest upsampling. A per-pixel softmax over three weight maps blends them; ``expand`` maps the
    blend back to the level's channel count.

    Input: ONE list ``[x_level_2, x_level_1, x_level_0]`` (largest map first), float32, shapes
    ``(B, 256m, 4H, 4W)``, ``(B, 512m, 2H, 2W)``, ``(B, 1024m, H, W)``.
    Output: ``(B, dim[level], s*H, s*W)`` with s = 1, 2, 4 for level 0, 1, 2
    (with ``vis=True``: also the (B, 3, ., .) fusion weights and the channel-summed blend).
    B, H, W are dynamic; the largest map's sides must be 4x the smallest's (divisible by 4).
    ``act_cfg`` is accepted for checkpoint/config compatibility and unused, as in the original.
    """

    def __init__(self, level, multiplier=1, rfb=False, vis=False, act_cfg=True):
        super().__init__()
        self.level = level
        self.dim = [int(1024 * multiplier), int(512 * multiplier), int(256 * multiplier)]
        self.inter_dim = inter = self.dim[level]
        if level == 0:
            self.stride_level_1 = Conv(self.dim[1], inter, 3, 2)
            self.stride_level_2 = Conv(self.dim[2], inter, 3, 2)
        elif level == 1:
            self.compress_level_0 = Conv(self.dim[0], inter, 1, 1)
            self.stride_level_2 = Conv(self.dim[2], inter, 3, 2)
        elif level == 2:
            self.compress_level_0 = Conv(self.dim[0], inter, 1, 1)
            self.compress_level_1 = Conv(self.dim[1], inter, 1, 1)
        else:
            raise ValueError(f"ASFF level must be 0, 1 or 2, got {level!r}")
        self.expand = Conv(inter, self.dim[level], 3, 1)
        compress_c = 8 if rfb else 16  # rfb halves the weight branches to save memory
        self.weight_level_0 = Conv(inter, compress_c, 1, 1)
        self.weight_level_1 = Conv(inter, compress_c, 1, 1)
        self.weight_level_2 = Conv(inter, compress_c, 1, 1)
        self.weight_levels = Conv(compress_c * 3, 3, 1, 1)
        self.vis = vis

    def forward(self, x):
        x_level_2, x_level_1, x_level_0 = x[0], x[1], x[2]
        if self.level == 0:
            level_0 = x_level_0
            level_1 = self.stride_level_1(x_level_1)
            level_2 = self.stride_level_2(F.max_pool2d(x_level_2, 3, stride=2, padding=1))
        elif self.level == 1:
            level_0 = F.interpolate(self.compress_level_0(x_level_0), scale_factor=2, mode="nearest")
            level_1 = x_level_1
            level_2 = self.stride_level_2(x_level_2)
        else:
            level_0 = F.interpolate(self.compress_level_0(x_level_0), scale_factor=4, mode="nearest")
            level_1 = F.interpolate(self.compress_level_1(x_level_1), scale_factor=2, mode="nearest")
            level_2 = x_level_2

        weights = self.weight_levels(
            torch.cat(
                (self.weight_level_0(level_0), self.weight_level_1(level_1), self.weight_level_2(level_2)), 1
            )
        )
        weights = F.softmax(weights, dim=1)
        fused = level_0 * weights[:, 0:1] + level_1 * weights[:, 1:2] + level_2 * weights[:, 2:]
        out = self.expand(fused)
        if self.vis:
            return out, weights, fused.sum(dim=1)
        return out
