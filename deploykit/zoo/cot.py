"""Contextual Transformer (CoT) attention: static context from a grouped conv, dynamic context from attention."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.zoo.registry import register


@register("cot")
class CoTAttention(nn.Module):
    """CoT attention block: static key context plus a softmax-over-positions weighted value.

    Li, Yao, Pan, Mei, "Contextual Transformer Networks for Visual Recognition", IEEE TPAMI 2022
    (arXiv 2107.12292); the External-Attention-pytorch reading, which averages the k*k local
    attention map to one weight per position and normalises it over all H*W positions.

    Contract: x ``(B, dim, H, W)`` float32 -> same shape. B, H, W can be dynamic.
    ``dim`` must be divisible by 4 (grouped key conv, ``groups=4``); ``kernel_size`` must be odd.
    """

    def __init__(self, dim=512, kernel_size=3):
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        self.key_embed = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=kernel_size // 2, groups=4, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(),
        )
        self.value_embed = nn.Sequential(
            nn.Conv2d(dim, dim, 1, bias=False),
            nn.BatchNorm2d(dim),
        )
        factor = 4
        self.attention_embed = nn.Sequential(
            nn.Conv2d(2 * dim, 2 * dim // factor, 1, bias=False),
            nn.BatchNorm2d(2 * dim // factor),
            nn.ReLU(),
            nn.Conv2d(2 * dim // factor, kernel_size * kernel_size * dim, 1),
        )

    def forward(self, x):
        k1 = self.key_embed(x)  # static context
        v = self.value_embed(x).flatten(2)  # (B, C, HW)
        att = self.attention_embed(torch.cat([k1, x], dim=1))  # (B, C*k*k, H, W)
        # Channel index is c*k*k + j: split it, average the k*k local weights.
        att = att.unflatten(1, (self.dim, self.kernel_size * self.kernel_size)).mean(2).flatten(2)
        k2 = torch.softmax(att, dim=-1) * v  # dynamic context, softmax over the H*W positions
        return k1 + k2.reshape_as(x)
