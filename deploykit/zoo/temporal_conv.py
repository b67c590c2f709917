"""MTGNN's gated temporal convolution: two dilated-inception layers, tanh(filter) * sigmoid(gate)."""

from __future__ import annotations

import torch
from torch import nn

from deploykit.zoo.registry import register


class dilated_inception(nn.Module):  # noqa: N801  (seed class name, kept for checkpoints)
    """Four dilated (1, k) convs, k in 2/3/6/7, trimmed to the shortest, concatenated on channels,
    then an MLP over time (``out``) mapping the trimmed length back to ``seq_len``."""

    def __init__(self, cin, cout, dilation_factor, seq_len):
        super().__init__()
        self.tconv = nn.ModuleList()
        self.padding = 0
        self.seq_len = seq_len
        self.kernel_set = [2, 3, 6, 7]
        self.dilation_factor = dilation_factor
        branch_out = int(cout / len(self.kernel_set))
        for kern in self.kernel_set:
            self.tconv.append(nn.Conv2d(cin, branch_out, (1, kern), dilation=(1, dilation_factor)))
        t_out = seq_len - dilation_factor * (self.kernel_set[-1] - 1) + 2 * self.padding
        self.out = nn.Sequential(nn.Linear(t_out, cin), nn.ReLU(), nn.Linear(cin, seq_len))

    def forward(self, input):
        k_max = self.kernel_set[-1]
        # Branch k is d*(k_max-k) steps longer than the k_max branch; keep its last steps.
        # The offset is a constructor constant, so no tensor size enters the graph.
        x = [
            conv(input)[..., self.dilation_factor * (k_max - k):]
            for conv, k in zip(self.tconv, self.kernel_set)
        ]
        return self.out(torch.cat(x, dim=1))


@register("temporal_conv")
class temporal_conv(nn.Module):  # noqa: N801  (seed class name, kept for checkpoints)
    """Gated temporal convolution of MTGNN.

    Wu, Pan, Long, Jiang, Chang, Zhang, "Connecting the Dots: Multivariate Time Series Forecasting
    with Graph Neural Networks", KDD 2020. This is the blog's variant, which appends an MLP over
    time so the output keeps length ``seq_len``.

    Input: ``x`` (B, cin, N, T) float32, N series of T steps. Output: (B, 4*int(cout/4), N, T).
    B and N are dynamic; T must equal ``seq_len`` (the ``out`` Linear layers fix it in their
    weights) and ``seq_len > 6 * dilation_factor``.
    """

    def __init__(self, cin, cout, dilation_factor, seq_len):
        super().__init__()
        self.filter_convs = dilated_inception(cin=cin, cout=cout, dilation_factor=dilation_factor, seq_len=seq_len)
        self.gated_convs = dilated_inception(cin=cin, cout=cout, dilation_factor=dilation_factor, seq_len=seq_len)

    def forward(self, X):
        return torch.tanh(self.filter_convs(X)) * torch.sigmoid(self.gated_convs(X))
