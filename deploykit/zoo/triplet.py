"""Triplet attention: three rotated Z-pool + 7x7 conv gates capturing C-W, H-C and H-W interactions."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.zoo.registry import register


class BasicConv(nn.Module):
    """Conv2d, optional BatchNorm (eps 1e-5, momentum 0.01), optional ReLU."""

    def __init__(self, in_planes, out_planes, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 relu=True, bn=True, bias=False):
        super().__init__()
        self.out_channels = out_planes
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class ZPool(nn.Module):
    """Concatenate max and mean over dim 1: (B, N, P, Q) -> (B, 2, P, Q)."""

    def forward(self, x):
        return torch.cat((torch.amax(x, 1, keepdim=True), torch.mean(x, 1, keepdim=True)), dim=1)


class AttentionGate(nn.Module):
    """Z-pool over dim 1, 7x7 conv + BN to one map, sigmoid, rescale the input."""

    def __init__(self):
        super().__init__()
        kernel_size = 7
        self.compress = ZPool()
        self.conv = BasicConv(2, 1, kernel_size, stride=1, padding=(kernel_size - 1) // 2, relu=False)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(self.compress(x)))


@register("triplet")
class TripletAttention(nn.Module):
    """Triplet attention: the mean of three attention gates applied to rotated views of the input.

    Misra, Nalamada, Arasanipalai, Hou, "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.

    Contract: x ``(B, C, H, W)`` float32 -> same shape. B, H, W can be dynamic (C too: no weight depends
    on it, the gates' convs slide over C as a spatial axis). ``no_spatial=True`` drops the H-W gate ``hw``.
    """

    def __init__(self, no_spatial=False):
        super().__init__()
        self.cw = AttentionGate()
        self.hc = AttentionGate()
        self.no_spatial = no_spatial
        if not no_spatial:
            self.hw = AttentionGate()

    def forward(self, x):
        # Rotate so the pooled axis is dim 1, gate, rotate back (both permutes are their own inverse).
        # .contiguous() keeps the Z-pool reduction order, hence the result, bit-identical to the reference.
        out_cw = self.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3)  # pools over H: C-W interaction
        out_hc = self.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1)  # pools over W: H-C interaction
        if self.no_spatial:
            return 1 / 2 * (out_cw + out_hc)
        return 1 / 3 * (self.hw(x) + out_cw + out_hc)
