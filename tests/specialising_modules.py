"""Modules whose trace depends on its example input: each must be refused at export, with its line.

Every forward works in PyTorch at every shape; a tracer keeps only what it saw at the example.
(Kept in one file so the tests can name the exact source line each refusal must point at.)
"""

import torch
import torch.nn.functional as F
from torch import nn


class PadOdd(nn.Module):
    """A shape branch on parity: right at even widths only if traced at an even one."""

    def forward(self, x):
        if x.size(-1) % 2:  # SITE PadOdd
            x = F.pad(x, (0, 1))
        return x * 2


class RareBranch(nn.Module):
    """A shape branch a five-point sweep rarely hits (widths 3 mod 7)."""

    def forward(self, x):
        if x.size(-1) % 7 == 3:  # SITE RareBranch
            return x * 3
        return x * 2


class Threshold(nn.Module):
    """A branch on a size threshold inside the declared range."""

    def forward(self, x):
        if x.size(-1) > 48:  # SITE Threshold
            return torch.tanh(x)
        return torch.sigmoid(x)


class IntOfSize(nn.Module):
    """int() of a size: the slice length is baked as a constant."""

    def forward(self, x):
        k = int(x.size(-1)) // 4  # SITE IntOfSize
        return x[..., :k] * 2


class FloatOfSize(nn.Module):
    """float() of a size: an attention-style scale baked as a constant."""

    def forward(self, x):
        scale = float(x.size(-1)) ** -0.5  # SITE FloatOfSize
        return x * scale


class LoopOverSize(nn.Module):
    """A Python loop over a size: unrolled at the example's width."""

    def forward(self, x):
        total = x[..., :1] * 0
        for i in range(x.size(-1)):  # SITE LoopOverSize
            total = total + x[..., i:i + 1]
        return total


class ItemOfData(nn.Module):
    """.item() of data: the example's maximum is baked as a constant."""

    def forward(self, x):
        return x / x.abs().max().item()  # SITE ItemOfData


class FloatOfData(nn.Module):
    """float() of data: the example's standard deviation is baked as a constant."""

    def forward(self, x):
        return x * float(x.std())  # SITE FloatOfData


class DataBranch(nn.Module):
    """A Python branch on data: only the example's branch is kept."""

    def forward(self, x):
        if x.mean() > 0:  # SITE DataBranch
            return x * 2
        return x - 1


class ReshapeToBatch2(nn.Module):
    """Fine for TorchScript (it traces reshape symbolically) but specialises under dynamo: refused there."""

    def forward(self, x):
        b = x.shape[0]
        if b > 3:  # SITE ReshapeToBatch2
            return x.flatten(1).sum(1, keepdim=True)
        return x.flatten(1)[:, :1]


SPECIALISING = {"PadOdd": "shape", "RareBranch": "shape", "Threshold": "shape", "IntOfSize": "shape",
                "FloatOfSize": "shape", "LoopOverSize": "shape", "ItemOfData": "data", "FloatOfData": "data",
                "DataBranch": "data", "ReshapeToBatch2": "shape"}


def site(name: str) -> int:
    """The line number the refusal for ``name`` must point at."""
    import inspect

    lines, start = inspect.getsourcelines(globals()[name])
    return start + next(i for i, line in enumerate(lines) if f"# SITE {name}" in line)


class HarmlessWarning(nn.Module):
    """Converts a tensor to a Python value the graph never depends on: must export (no false refusal)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        assert bool(x.size(1) == 4), "four channels"  # a TracerWarning, but the channel axis is static
        return self.conv(x)


def make(name: str) -> nn.Module:
    return globals()[name]()
