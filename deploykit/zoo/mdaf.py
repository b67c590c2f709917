"""MDAF: SFFNet's Multiscale Dual-Representation Alignment Filter (two inputs, cross attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deploykit.errors import DeployKitError
from deploykit.zoo.registry import register


class BiasFree_LayerNorm(nn.Module):
    """Restormer's bias-free LayerNorm over dim 1 of an NCHW map: ``x / sqrt(var + 1e-5) * weight``.

    The mean enters the variance but is not subtracted from ``x`` (as in the original).
    """

    def __init__(self, normalized_shape: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = (x - x.mean(1, keepdim=True)).pow(2).mean(1, keepdim=True)
        return x / torch.sqrt(var + 1e-5) * self.weight[:, None, None]


class WithBias_LayerNorm(nn.Module):
    """Restormer's LayerNorm with bias over dim 1 of an NCHW map (population variance, eps 1e-5)."""

    def __init__(self, normalized_shape: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(1, keepdim=True)
        var = centred.pow(2).mean(1, keepdim=True)
        return centred / torch.sqrt(var + 1e-5) * self.weight[:, None, None] + self.bias[:, None, None]


class LayerNorm(nn.Module):
    """Channel LayerNorm wrapper whose single child is ``body`` (the checkpoint keys are ``normX.body.*``).

    The original goes NCHW -> (B, HW, C) -> norm over the last axis -> NCHW; normalising over dim 1
    directly is the same arithmetic without the two transposes.
    """

    def __init__(self, dim: int, LayerNorm_type: str):
        super().__init__()
        if LayerNorm_type == "BiasFree":
            self.body = BiasFree_LayerNorm(dim)
        else:  # the original treats every other value as 'WithBias'
            self.body = WithBias_LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _rows(t: torch.Tensor, heads: int) -> torch.Tensor:
    """``b (head c) h w -> b head h (w c)``: one token per row."""
    return t.unflatten(1, (heads, -1)).permute(0, 1, 3, 4, 2).flatten(3)


def _cols(t: torch.Tensor, heads: int) -> torch.Tensor:
    """``b (head c) h w -> b head w (h c)``: one token per column."""
    return t.unflatten(1, (heads, -1)).permute(0, 1, 4, 3, 2).flatten(3)


def _from_rows(t: torch.Tensor, c: int) -> torch.Tensor:
    """``b head h (w c) -> b (head c) h w``."""
    return t.unflatten(3, (-1, c)).permute(0, 1, 4, 2, 3).flatten(1, 2)


def _from_cols(t: torch.Tensor, c: int) -> torch.Tensor:
    """``b head w (h c) -> b (head c) h w``."""
    return t.unflatten(3, (-1, c)).permute(0, 1, 4, 3, 2).flatten(1, 2)


@register("mdaf")
class MDAF(nn.Module):
    """MDAF: multiscale strip convolutions and row/column dual cross attention fusing two maps.

    Yunsong Yang, Genji Yuan, Jinjiang Li, "SFFNet: A Wavelet-Based Spatial and Frequency Domain
    Fusion Network for Remote Sensing Segmentation", IEEE TGRS 2024 (arXiv:2405.01992).
    Follows the authors' code (yysdck/SFFNet, GeoSeg/geoseg/models/SFFNet/MDAF.py), where the
    ``conv2_*`` strip convolutions read the second input.

    Inputs: ``x1``, ``x2`` float tensors (B, dim, H, W) of the same shape. Output: (B, dim, H, W).
    B, H and W can all be dynamic (H != W is fine; no divisibility). ``dim % num_heads == 0``.
    Attention is over the H rows of ``x1`` (queries from ``x2``) and the W columns of ``x2``
    (queries from ``x1``); the token length is W*dim/heads or H*dim/heads. No scale, no dropout.
    """

    def __init__(self, dim: int, num_heads: int = 8, LayerNorm_type: str = "WithBias"):
        super().__init__()
        if dim % num_heads:
            raise DeployKitError(f"MDAF: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads

        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1)  # shared by all four projections

        def strip(k: int, horizontal: bool) -> nn.Conv2d:
            size, pad = ((1, k), (0, k // 2)) if horizontal else ((k, 1), (k // 2, 0))
            return nn.Conv2d(dim, dim, size, padding=pad, groups=dim)

        # Registration order matters for state_dict order: conv1_1_*, conv1_2_*, conv2_1_*, conv2_2_*.
        for i in (1, 2):
            for j, horizontal in ((1, True), (2, False)):
                for n, k in ((1, 7), (2, 11), (3, 21)):
                    setattr(self, f"conv{i}_{j}_{n}", strip(k, horizontal))

    def _strips(self, x: torch.Tensor, i: int) -> torch.Tensor:
        out = getattr(self, f"conv{i}_1_1")(x)
        for name in ("1_2", "1_3", "2_1", "2_2", "2_3"):
            out = out + getattr(self, f"conv{i}_{name}")(x)
        return self.project_out(out)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        x1 = self.norm1(x1)
        x2 = self.norm2(x2)
        out1 = self._strips(x1, 1)
        out2 = self._strips(x2, 2)

        heads, c = self.num_heads, self.head_dim
        k1 = v1 = _rows(out1, heads)  # (b, head, h, w*c)
        k2 = v2 = _cols(out2, heads)  # (b, head, w, h*c)
        q1 = F.normalize(_rows(out2, heads), dim=-1)
        q2 = F.normalize(_cols(out1, heads), dim=-1)
        k1 = F.normalize(k1, dim=-1)
        k2 = F.normalize(k2, dim=-1)

        out3 = torch.softmax(q1 @ k1.transpose(-2, -1), dim=-1) @ v1 + q1
        out4 = torch.softmax(q2 @ k2.transpose(-2, -1), dim=-1) @ v2 + q2
        out3 = _from_rows(out3, c)
        out4 = _from_cols(out4, c)
        return self.project_out(out3) + self.project_out(out4) + x1 + x2
