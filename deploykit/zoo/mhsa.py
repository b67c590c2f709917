"""Multi-head scaled dot-product attention with learned q/k/v/o projections."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import init

from deploykit.zoo.registry import register


@register("mhsa")
class ScaledDotProductAttention(nn.Module):
    """Multi-head scaled dot-product attention (fc_q, fc_k, fc_v, fc_o).

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017.

    Contract: ``forward(queries, keys, values)`` with queries ``(B, Nq, d_model)`` and keys/values
    ``(B, Nk, d_model)``, float32, returns ``(B, Nq, d_model)``. B, Nq and Nk can all be dynamic.
    ``attention_mask`` (bool, broadcastable to ``(B, h, Nq, Nk)``, True = masked) and
    ``attention_weights`` (multiplied into the scores) are optional and default to None.
    """

    def __init__(self, d_model, d_k, d_v, h, dropout=0.1):
        super().__init__()
        self.fc_q = nn.Linear(d_model, h * d_k)
        self.fc_k = nn.Linear(d_model, h * d_k)
        self.fc_v = nn.Linear(d_model, h * d_v)
        self.fc_o = nn.Linear(h * d_v, d_model)
        self.dropout = nn.Dropout(dropout)
        self.d_model = d_model
        self.d_k = d_k
        self.d_v = d_v
        self.h = h
        self.init_weights()

    def init_weights(self):
        init_linear_weights(self)

    def forward(self, queries, keys, values, attention_mask=None, attention_weights=None):
        attended = heads_attention(self, self.fc_q(queries), self.fc_k(keys), self.fc_v(values), attention_mask,
                                   attention_weights)
        return self.fc_o(attended)


def init_linear_weights(module: nn.Module) -> None:
    """The reference implementation's init: tiny normal weights, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                init.constant_(m.bias, 0)


def heads_attention(module, q, k, v, attention_mask=None, attention_weights=None):
    """Scaled dot-product attention over ``module.h`` heads of ``q``/``k``/``v`` (B, N, h*d), as (B, Nq, h*d_v).

    unflatten/flatten split and merge heads without reading tensor sizes (export-friendly)."""
    q = q.unflatten(-1, (module.h, module.d_k)).transpose(1, 2)  # (B, h, Nq, d_k)
    k = k.unflatten(-1, (module.h, module.d_k)).permute(0, 2, 3, 1)  # (B, h, d_k, Nk)
    v = v.unflatten(-1, (module.h, module.d_v)).transpose(1, 2)  # (B, h, Nk, d_v)
    att = torch.matmul(q, k) / math.sqrt(module.d_k)  # (B, h, Nq, Nk)
    if attention_weights is not None:
        att = att * attention_weights
    if attention_mask is not None:
        att = att.masked_fill(attention_mask, float("-inf"))
    att = module.dropout(torch.softmax(att, -1))
    return torch.matmul(att, v).transpose(1, 2).flatten(2)  # (B, Nq, h*d_v)
