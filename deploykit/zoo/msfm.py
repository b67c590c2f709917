"""MSFM: an Inception-style multi-scale fusion of a 1x1 branch and a 1x1 -> 3x3 branch."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.zoo.registry import register


@register("msfm")
class MultiScaleFusionModule(nn.Module):
    """Multi-scale fusion: a 1x1 conv branch and a 1x1 -> 3x3 conv branch, concatenated on channels.

    From a blog answer on multi-scale feature fusion for bridge-surface defect segmentation (seed 001,
    tail); the pattern is the GoogLeNet Inception block: C. Szegedy et al., "Going Deeper with
    Convolutions", CVPR 2015. The seed's code is cut off inside ``forward``; its constructor is complete,
    so the parameters below are exactly the seed's, and the forward is the one its text implies.

    ``forward(x)``: float (B, in_channels, H, W) -> (B, 2 * (out_channels // 4), H, W), i.e. half of
    ``out_channels`` when it is divisible by 4: each branch has ``out_channels // 4`` channels and the seed
    defines no further branch or projection. B, H and W can all be dynamic, any size (stride 1, "same"
    padding, no activation or normalisation between the convs, as in the seed).
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        branch_channels = out_channels // 4
        self.branch_1x1 = nn.Conv2d(in_channels, branch_channels, kernel_size=1)
        self.branch_3x3_reduce = nn.Conv2d(in_channels, branch_channels, kernel_size=1)
        self.branch_3x3 = nn.Conv2d(branch_channels, branch_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_1x1(x), self.branch_3x3(self.branch_3x3_reduce(x))], dim=1)
