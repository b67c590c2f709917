"""Coordinate Attention."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.zoo.registry import register


@register("coordatt")
class CoordAtt(nn.Module):
    """Coordinate attention: pool along W and along H, a shared 1x1 conv-bn-h_swish, one gate per direction.

    Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021.

    Input ``x``: float tensor (B, inp, H, W). Output: same shape and dtype. ``oup`` must equal ``inp``
    (the gates multiply the input). B, H and W can be dynamic (any H, W >= 1).
    The hidden width is ``mip = max(8, inp // reduction)``. Follows the official code (h_swish after bn1);
    ``act`` is ``nn.Hardswish``, the same function as the official ``h_swish`` (x * relu6(x + 3) / 6).
    """

    def __init__(self, inp, oup, reduction=32):
        super().__init__()
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))  # (B, C, H, 1)
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))  # (B, C, 1, W)
        mip = max(8, inp // reduction)
        self.conv1 = nn.Conv2d(inp, mip, kernel_size=1, stride=1, padding=0)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, oup, kernel_size=1, stride=1, padding=0)
        self.conv_w = nn.Conv2d(mip, oup, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        x_h = self.pool_h(x)
        x_w = self.pool_w(x).transpose(2, 3)  # (B, C, W, 1), so both run through one conv/bn
        # one concatenated tensor, as in the paper: in training mode bn1's statistics span both directions
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], 2))))
        y_h, y_w = y[:, :, :h], y[:, :, h:]
        a_h = self.conv_h(y_h).sigmoid()  # (B, C, H, 1)
        a_w = self.conv_w(y_w.transpose(2, 3)).sigmoid()  # (B, C, 1, W)
        return x * a_w * a_h
