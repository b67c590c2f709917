"""PMSA: parallel multi-scale self-attention (conv branches of different kernel sizes, attention over pixels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deploykit.zoo.registry import register


@register("pmsa")
class ParallelMultiScaleSelfAttention(nn.Module):
    """Parallel multi-scale self-attention: per kernel size, conv -> ReLU -> LayerNorm -> MHSA over the H*W pixels.

    Not from one paper: a blog construction (seed 003) in the spirit of DMSANet (A. Sagar, "DMSANet: Dual
    Multi Scale Attention Network", arXiv 2021), built on multi-head attention (A. Vaswani et al.,
    "Attention Is All You Need", NeurIPS 2017). The seed's constructor runs and is kept as is (its
    ``branches.{i}.{0,2,3}`` keys load with ``strict=True``); its forward cannot run, so this one follows its
    text: each branch maps ``channels`` to ``channels // len(reduction_ratio)`` with a k x k conv
    (k = ``reduction_ratio[i]``, "same" padding, for even k the extra row/column at the bottom/right, as
    PyTorch's ``padding="same"``), normalises the channels of each pixel, applies multi-head self-attention
    across the H*W pixels, and the branch outputs are concatenated on channels.

    ``forward(x)``: float (B, channels, H, W) -> (B, len(reduction_ratio) * (channels // len(reduction_ratio)),
    H, W), which is (B, channels, H, W) when ``channels`` is divisible by the number of branches.
    ``channels // len(reduction_ratio)`` must be divisible by ``num_heads``. B, H and W can all be dynamic with no
    divisibility; cost and memory grow as (H*W)^2.
    """

    def __init__(self, channels, num_heads=8, reduction_ratio=(1, 2, 4)):
        super().__init__()
        dim = channels // len(reduction_ratio)
        # Indices 0..3 of each Sequential are the seed's; the forward calls them one by one (the attention
        # takes query, key and value, so the Sequential is a container here, not a pipeline).
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, dim, kernel_size=k),
                nn.ReLU(),
                nn.LayerNorm([dim]),
                nn.MultiheadAttention(embed_dim=dim, num_heads=num_heads),
            )
            for k in reduction_ratio
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for conv, act, norm, attn in self.branches:
            kh, kw = conv.kernel_size
            # "same" padding as an explicit pad: even kernels need one more on the bottom/right.
            y = act(conv(F.pad(x, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))))
            tokens = norm(y.flatten(2).permute(2, 0, 1))  # (H*W, B, dim): the attention's sequence-first layout
            tokens = attn(tokens, tokens, tokens, need_weights=False)[0]
            outputs.append(tokens.permute(1, 2, 0).reshape(y.shape))
        return torch.cat(outputs, dim=1)
