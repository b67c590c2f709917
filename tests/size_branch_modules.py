"""Modules that branch on sizes (each must be refused at export, naming its line, whatever the sweep draws),
and modules that must go through: a guard true over the whole range, a shape-keyed cache, an in-place input
change, a non-persistent buffer. Each refused module's branch line carries ``# SITE <name>``.

Every module runs in PyTorch at every declared shape; only a trace of one branch is wrong somewhere.
``BRANCHING`` maps each name to its dims (the CLI's --dim syntax) and the output shape.
"""

import torch
import torch.nn.functional as F
from torch import nn

STEPPED = {"B": "1:2:4", "H": "16:32:64/8", "W": "16:32:64/8"}
PLAIN = {"B": "1:2:4", "H": "8:16:64", "W": "8:16:64"}
SAME = '["B", 4, "H", "W"]'


class EqStepped(nn.Module):
    """The issue's case: H=40 is a declared value of H=16:32:64/8."""

    def forward(self, x):
        y = x * 1.5
        if x.shape[2] == 40:  # SITE EqStepped
            y = y * 2.0
        return y


class EqOnGrid32(nn.Module):
    """An equality at an on-grid value of a /32 axis."""

    def forward(self, x):
        h = x.shape[2]
        if h == 96:  # SITE EqOnGrid32
            return x - 1
        return x + 1


class ResidueStepped(nn.Module):
    def forward(self, x):
        if x.shape[2] % 7 == 0:  # SITE ResidueStepped
            return x + 1
        return x * 2


class ResiduePlain(nn.Module):
    def forward(self, x):
        if x.shape[3] % 5 == 3:  # SITE ResiduePlain
            return x.flip(-1)
        return x


class ThresholdGt(nn.Module):
    def forward(self, x):
        if x.shape[3] > 48:  # SITE ThresholdGt
            return torch.tanh(x)
        return torch.sigmoid(x)


class ThresholdLeStepped(nn.Module):
    def forward(self, x):
        if x.shape[2] <= 24:  # SITE ThresholdLeStepped
            return x * 3
        return x


class BatchNotTwo(nn.Module):
    """A branch on the batch: the example's B=2 hides it."""

    def forward(self, x):
        if x.shape[0] != 2:  # SITE BatchNotTwo
            return x * 0.5
        return x


class _OddWidth(nn.Module):
    def forward(self, x):
        if x.shape[-1] % 2 == 1:  # SITE InSubmodule
            return x - x.mean()
        return x


class InSubmodule(nn.Module):
    """The branch sits in a child module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.odd = _OddWidth()

    def forward(self, x):
        return self.odd(self.conv(x))


class _Block(nn.Module):
    def forward(self, x):
        if x.shape[2] == 48:  # SITE InLoop
            return x + 1
        return x * 1.0


class InLoop(nn.Module):
    """The branch runs inside a loop over blocks."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(_Block() for _ in range(3))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class LoopOverSize(nn.Module):
    """A Python loop whose trip count is a size: unrolled at the example's."""

    def forward(self, x):
        total = x[:, :, :1] * 0
        for i in range(x.shape[2] // 8):  # SITE LoopOverSize
            total = total + x[:, :, 8 * i:8 * i + 1]
        return total


class AreaThreshold(nn.Module):
    """A guard on two symbols at once."""

    def forward(self, x):
        if x.shape[2] * x.shape[3] > 2048:  # SITE AreaThreshold
            return F.avg_pool2d(x, 3, 1, 1)
        return x


class SquareOnly(nn.Module):
    """A relation between two symbols: H == W."""

    def forward(self, x):
        if x.shape[2] == x.shape[3]:  # SITE SquareOnly
            return x.transpose(2, 3) * 2
        return x


class MinSide(nn.Module):
    def forward(self, x):
        if min(x.shape[2], x.shape[3]) < 24:  # SITE MinSide
            return x * -1
        return x


class BatchResidue(nn.Module):
    def forward(self, x):
        if x.shape[0] % 3 == 0:  # SITE BatchResidue
            return x + 2
        return x


def _maybe_scale(x):
    if x.shape[3] == 56:  # SITE InHelper
        return x * 4
    return x


class InHelper(nn.Module):
    """The branch is in a plain function the forward calls."""

    def forward(self, x):
        return _maybe_scale(x) + 1


class DerivedInput(nn.Module):
    """Two inputs, the second at twice the first's size (an FPN's levels): the branch is on the derived axis."""

    def forward(self, x, y):
        if y.shape[2] == 64:  # SITE DerivedInput
            y = y * 3
        return x + F.avg_pool2d(y, 2)


BRANCHING = {
    "EqStepped": (STEPPED, SAME),
    "EqOnGrid32": ({"B": "1:2:4", "H": "64:128:256/32", "W": "64:128:256/32"}, SAME),
    "ResidueStepped": (STEPPED, SAME),
    "ResiduePlain": (PLAIN, SAME),
    "ThresholdGt": (PLAIN, SAME),
    "ThresholdLeStepped": (STEPPED, SAME),
    "BatchNotTwo": (STEPPED, SAME),
    "InSubmodule": (PLAIN, SAME),
    "InLoop": (STEPPED, SAME),
    "LoopOverSize": (STEPPED, '["B", 4, 1, "W"]'),
    "AreaThreshold": (STEPPED, SAME),
    "SquareOnly": (STEPPED, '["B", 4, "H", "W"]'),
    "MinSide": (STEPPED, SAME),
    "BatchResidue": ({"B": "1:2:8", "H": "16:32:64/8", "W": "16:32:64/8"}, SAME),
    "InHelper": (STEPPED, SAME),
    "DerivedInput": (STEPPED, SAME),
}


# -- modules that must go through ----------------------------------------------------------------------
class GuardTrueEverywhere(nn.Module):
    """Guards that hold at every declared value (H=16:32:64/8): proved, not refused."""

    def forward(self, x):
        assert x.shape[2] % 8 == 0, "a multiple of 8"
        if x.shape[2] >= 16:
            return x * 2
        return x


def make_anchors(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    return (ys * 0.01 + xs * 0.02)[None, None]


class DetectLike(nn.Module):
    """Ultralytics' Detect head habit: anchors cached and rebuilt when the input shape (batch included) changes.
    At a fixed H, W the cached anchors are right at every batch size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.shape = None
        self.anchors = torch.empty(0)

    def forward(self, x):
        y = self.conv(x)
        shape = x.shape
        if self.shape != shape:
            self.anchors = make_anchors(shape[2], shape[3])
            self.shape = shape
        return y + self.anchors


class InPlaceInput(nn.Module):
    """Doubles its input in place before a conv: the reference and the runtime must each see the original."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x.mul_(2.0)
        return self.conv(x)


class Noisy(nn.Module):
    """Fresh noise in forward: the output changes between two identical calls."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y + 0.5 * torch.rand_like(y)  # SITE Noisy


class FixedProjection(nn.Module):
    """A random projection kept as a non-persistent buffer: not in its state_dict, but part of the model."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.register_buffer("proj", torch.randn(channels, channels), persistent=False)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return self.conv(torch.einsum("oc,bchw->bohw", self.proj, x))


def make(name: str) -> nn.Module:
    return globals()[name]()


def site(name: str) -> int:
    """The line number a refusal for ``name`` must point at."""
    import inspect
    import sys

    lines, _ = inspect.findsource(sys.modules[__name__])
    return 1 + next(i for i, line in enumerate(lines) if f"# SITE {name}" in line)


class NotExportable(nn.Module):
    """A module torch.export cannot trace (as a detector with data-dependent outputs, here made explicit):
    its range is sampled, not proved, and verify then covers every declared value of each axis."""

    def forward(self, x):
        if torch.compiler.is_exporting():
            raise NotImplementedError("no torch.export support in this block")
        return torch.relu(x) * 2
