"""DANet's dual attention: a position (spatial) branch and a channel branch, summed residually."""

from __future__ import annotations

from torch import nn

from deploykit.zoo.registry import register
from deploykit.zoo.mhsa import ScaledDotProductAttention
from deploykit.zoo.sdpa_simplified import SimplifiedScaledDotProductAttention


class PositionAttentionModule(nn.Module):
    """Conv, then single-head self-attention over the H*W positions: (B, C, H, W) -> (B, H*W, C)."""

    def __init__(self, d_model=512, kernel_size=3, H=7, W=7):
        super().__init__()
        self.cnn = nn.Conv2d(d_model, d_model, kernel_size=kernel_size, padding=(kernel_size - 1) // 2)
        self.pa = ScaledDotProductAttention(d_model, d_k=d_model, d_v=d_model, h=1)

    def forward(self, x):
        y = self.cnn(x).flatten(2).transpose(1, 2)  # (B, HW, C): tokens are positions
        return self.pa(y, y, y)


class ChannelAttentionModule(nn.Module):
    """Conv, then projection-free attention over the C channels: (B, C, H, W) -> (B, C, H*W).

    Its ``fc_o`` is Linear(H*W, H*W), so H*W is fixed by the weights.
    """

    def __init__(self, d_model=512, kernel_size=3, H=7, W=7):
        super().__init__()
        self.cnn = nn.Conv2d(d_model, d_model, kernel_size=kernel_size, padding=(kernel_size - 1) // 2)
        self.pa = SimplifiedScaledDotProductAttention(H * W, h=1)

    def forward(self, x):
        y = self.cnn(x).flatten(2)  # (B, C, HW): tokens are channels
        return self.pa(y, y, y)


@register("danet")
class DAModule(nn.Module):
    """DANet dual attention: (x + 0.5 * position_attention) + (x + 0.2 * channel_attention).

    Fu et al., "Dual Attention Network for Scene Segmentation", CVPR 2019
    (this is the External-Attention-pytorch reading: both branches use a conv and scaled dot-product attention).

    Contract: x ``(B, d_model, H, W)`` float32 -> same shape. Only B is dynamic: the channel branch's
    Linear(H*W, H*W) fixes H and W to the constructor's values. ``kernel_size`` must be odd.
    """

    def __init__(self, d_model=512, kernel_size=3, H=7, W=7):
        super().__init__()
        # The blog seed ignores these arguments (hard-codes 512 and 7x7); we pass them through.
        self.position_attention_module = PositionAttentionModule(d_model=d_model, kernel_size=kernel_size, H=H, W=W)
        self.channel_attention_module = ChannelAttentionModule(d_model=d_model, kernel_size=kernel_size, H=H, W=W)

    def forward(self, input):
        p_out = self.position_attention_module(input).transpose(1, 2).reshape_as(input)
        c_out = self.channel_attention_module(input).reshape_as(input)
        return (input + 0.5 * p_out) + (input + 0.2 * c_out)
