"""Small user modules for the user-module paths (`--module tests.user_modules:...`)."""

import torch
from torch import nn


class Gate(nn.Module):
    """A user's own attention-like block: x * sigmoid(conv(x))."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


def make_gate(channels: int = 8) -> nn.Module:
    return Gate(channels)


class TimeMix(nn.Module):
    """Mixes the last axis with a Linear(T, T): T is fixed by the weights, whatever a recipe claims."""

    def __init__(self, steps: int = 12):
        super().__init__()
        self.mix = nn.Linear(steps, steps)

    def forward(self, x):
        return self.mix(x)


def make_time_mix(steps: int = 12) -> nn.Module:
    return TimeMix(steps)


USER_RECIPE = """
factory = "tests.user_modules:make_gate"
summary = "a user's gate block"
[args]
channels = 8
[[inputs]]
name = "x"
shape = ["B", 8, "H", "W"]
[[outputs]]
name = "y"
shape = ["B", 8, "H", "W"]
[dims.B]
min = 1
opt = 2
max = 4
[dims.H]
min = 4
opt = 16
max = 32
[dims.W]
min = 4
opt = 16
max = 32
"""

# T is declared dynamic, but the Linear fixes it: the dynamo exporter specialises T silently.
TIME_MIX_RECIPE = """
factory = "tests.user_modules:make_time_mix"
[args]
steps = 12
[[inputs]]
name = "x"
shape = ["B", 4, "T"]
[[outputs]]
name = "y"
shape = ["B", 4, "T"]
[dims.B]
min = 1
opt = 2
max = 4
[dims.T]
min = 12
opt = 12
max = 24
"""
