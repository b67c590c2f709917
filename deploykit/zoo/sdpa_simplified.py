"""Multi-head scaled dot-product attention without q/k/v projections (only the output projection)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import init

from deploykit.zoo.registry import register


@register("sdpa_simplified")
class SimplifiedScaledDotProductAttention(nn.Module):
    """Simplified multi-head scaled dot-product attention: no q/k/v projections, output ``fc_o`` only.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (attention); the projection-free form is
    the one DANet's channel branch uses (Fu et al., "Dual Attention Network for Scene Segmentation", CVPR 2019).

    Contract: ``forward(queries, keys, values)`` with queries ``(B, Nq, d_model)`` and keys/values
    ``(B, Nk, d_model)``, float32, returns ``(B, Nq, d_model)``. B, Nq and Nk can be dynamic;
    ``d_model`` must be divisible by ``h``. ``attention_mask`` / ``attention_weights`` are optional
    (default None) as in :class:`deploykit.zoo.mhsa.ScaledDotProductAttention`.
    """

    def __init__(self, d_model, h, dropout=0.1):
        super().__init__()
        self.d_model = d_model
        self.d_k = d_model // h
        self.d_v = d_model // h
        self.h = h
        self.fc_o = nn.Linear(h * self.d_v, d_model)
        self.dropout = nn.Dropout(dropout)
        self.init_weights()

    def init_weights(self):
        # The reference implementation's init: tiny normal weights, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    init.constant_(m.bias, 0)

    def forward(self, queries, keys, values, attention_mask=None, attention_weights=None):
        q = queries.unflatten(-1, (self.h, self.d_k)).transpose(1, 2)  # (B, h, Nq, d_k)
        k = keys.unflatten(-1, (self.h, self.d_k)).permute(0, 2, 3, 1)  # (B, h, d_k, Nk)
        v = values.unflatten(-1, (self.h, self.d_v)).transpose(1, 2)  # (B, h, Nk, d_v)
        att = torch.matmul(q, k) / math.sqrt(self.d_k)  # (B, h, Nq, Nk)
        if attention_weights is not None:
            att = att * attention_weights
        if attention_mask is not None:
            att = att.masked_fill(attention_mask, float("-inf"))
        att = self.dropout(torch.softmax(att, -1))
        out = torch.matmul(att, v).transpose(1, 2).flatten(2)  # (B, Nq, h*d_v)
        return self.fc_o(out)
