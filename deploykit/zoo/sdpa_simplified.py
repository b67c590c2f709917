"""Multi-head scaled dot-product attention without q/k/v projections (only the output projection)."""

from __future__ import annotations

from torch import nn

from deploykit.zoo.mhsa import heads_attention, init_linear_weights
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
        init_linear_weights(self)

    def forward(self, queries, keys, values, attention_mask=None, attention_weights=None):
        return self.fc_o(heads_attention(self, queries, keys, values, attention_mask, attention_weights))
