"""PMFS block: PMFSNet's GlobalPMFSBlock_AP_Separate (2d), multi-scale channel then spatial self-attention."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.errors import DeployKitError
from deploykit.zoo.registry import register


class DepthWiseSeparateConvBlock(nn.Module):
    """PMFSNet's pre-activation depthwise-separable conv: BN -> ReLU -> pad -> depthwise -> pointwise.

    Everything lives in ``conv`` (a Sequential) so checkpoint keys are ``conv.0.*`` (BN), ``conv.3.weight``
    (depthwise, no bias) and ``conv.4.*`` (pointwise, with bias); index 2 is the (possibly zero) pad.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1):
        super().__init__()
        padding = kernel_size - stride
        if padding % 2:  # odd total padding: the extra pixel goes after (right/bottom), as in the original
            pad = nn.ConstantPad2d((1, padding - 1) * 2, 0.0)
        else:
            pad = nn.ConstantPad2d(padding // 2, 0.0)
        self.conv = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.ReLU(),
            pad,
            nn.Conv2d(in_channel, in_channel, kernel_size, stride=stride, groups=in_channel, bias=False),
            nn.Conv2d(in_channel, out_channel, 1, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@register("pmfs")
class GlobalPMFSBlock_AP_Separate(nn.Module):
    """PMFS block: polarized multi-scale feature self-attention over a pyramid of maps (2d).

    Jiahui Zhong, Wenhong Tian, Yuanlun Xie, Zhijia Liu, Jie Ou, Taoran Tian, Lei Zhang, "PMFSNet:
    Polarized Multi-scale Feature Self-attention Network For Lightweight Medical Image Segmentation",
    Computer Methods and Programs in Biomedicine 2025 (arXiv:2401.07579, 2024). Follows the authors'
    code (yykzjh/PMFSNet, lib/models/modules/GlobalPMFSBlock.py), 2d path.

    Input: ONE list of ``br`` float maps; map i is (B, in_channels[i], k_i*H, k_i*W) with
    k_i = max_pool_kernels[i] (each is max-pooled by k_i to H x W before the channels are fused).
    Output: (B, in_channels[-1], H, W). B, H, W can be dynamic; map i's sizes must be exact
    multiples of k_i that all pool to the same H x W. No residual connection.
    """

    def __init__(self, in_channels: list, max_pool_kernels: list, ch: int, ch_k: int, ch_v: int, br: int,
                 dim: str = "2d"):
        super().__init__()
        if dim != "2d":
            raise DeployKitError(f"pmfs: only dim='2d' is supported (got {dim!r})")
        if not (len(in_channels) == len(max_pool_kernels) == br):
            raise DeployKitError(
                f"pmfs: in_channels ({len(in_channels)}) and max_pool_kernels ({len(max_pool_kernels)}) "
                f"need one entry per branch (br={br})")
        if ch_k != ch_v:  # the original reshapes V with ch_k
            raise DeployKitError(f"pmfs: ch_k ({ch_k}) must equal ch_v ({ch_v})")
        self.ch_bottle = in_channels[-1]
        self.ch = ch
        self.ch_k = ch_k
        self.ch_v = ch_v
        self.br = br
        self.ch_in = ch * br
        self.dim = dim
        dws = DepthWiseSeparateConvBlock
        ch_in = self.ch_in

        self.ch_convs = nn.ModuleList([dws(c, ch, 3) for c in in_channels])
        self.max_pool_layers = nn.ModuleList([nn.MaxPool2d(kernel_size=k, stride=k) for k in max_pool_kernels])

        # Channel self-attention.
        self.ch_Wq = dws(ch_in, ch_in, 1)
        self.ch_Wk = dws(ch_in, 1, 1)
        self.ch_Wv = dws(ch_in, ch_in, 1)
        self.ch_softmax = nn.Softmax(dim=1)
        self.ch_score_conv = nn.Conv2d(ch_in, ch_in, 1)
        self.ch_layer_norm = nn.LayerNorm((ch_in, 1, 1))
        self.sigmoid = nn.Sigmoid()

        # Spatial self-attention.
        self.sp_Wq = dws(ch_in, br * ch_k, 1)
        self.sp_Wk = dws(ch_in, br * ch_k, 1)
        self.sp_Wv = dws(ch_in, br * ch_v, 1)
        self.sp_softmax = nn.Softmax(dim=-1)
        self.sp_output_conv = dws(br * ch_v, ch_in, 1)

        self.output_conv = dws(ch_in, self.ch_bottle, 3)

    def forward(self, feature_maps: list) -> torch.Tensor:
        x = torch.cat([conv(pool(f)) for conv, pool, f in zip(self.ch_convs, self.max_pool_layers, feature_maps)],
                      dim=1)
        b, _, h, w = x.shape

        # Channel branch: one global query vector per channel, weighted by a softmax over positions.
        ch_q = self.ch_Wq(x).flatten(2)  # (b, ch_in, hw)
        ch_k = self.ch_softmax(self.ch_Wk(x).flatten(1).unsqueeze(-1))  # (b, hw, 1)
        z = torch.matmul(ch_q, ch_k).unsqueeze(-1)  # (b, ch_in, 1, 1)
        ch_score = self.sigmoid(self.ch_layer_norm(self.ch_score_conv(z)))
        ch_out = self.ch_Wv(x) * ch_score

        # Spatial branch: branches become extra "positions"; K is averaged over them and space.
        br, ck = self.br, self.ch_k
        sp_q = self.sp_Wq(ch_out).unflatten(1, (br, ck)).permute(0, 2, 3, 4, 1).flatten(2)  # (b, ck, h*w*br)
        sp_k = self.sp_Wk(ch_out).unflatten(1, (br, ck)).mean(dim=(1, 3, 4)).unsqueeze(1)  # (b, 1, ck)
        sp_v = self.sp_Wv(ch_out).unflatten(1, (br, ck)).permute(0, 2, 3, 4, 1)  # (b, cv, h, w, br)
        sp_k = self.sp_softmax(sp_k)
        sp_score = self.sigmoid(torch.matmul(sp_k, sp_q).reshape(b, 1, h, w, br))
        sp_out = (sp_v * sp_score).permute(0, 4, 1, 2, 3).flatten(1, 2)  # (b, br*cv, h, w)
        return self.output_conv(self.sp_output_conv(sp_out))
