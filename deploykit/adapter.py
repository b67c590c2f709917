"""Bridge between a recipe's named, flat inputs/outputs and a module's own forward signature.

Some zoo modules take one list (FPN, ASFF, PMFS: ``call = "list"``) or return a list; ONNX wants
positional tensors in and a flat tuple out. The adapter keeps that mapping in one place for the
exporter and the PyTorch reference runner alike.
"""

from __future__ import annotations

import torch
from torch import nn


def flatten_outputs(result) -> tuple[torch.Tensor, ...]:
    if isinstance(result, torch.Tensor):
        return (result,)
    if isinstance(result, (list, tuple)):
        flat: list[torch.Tensor] = []
        for item in result:
            flat.extend(flatten_outputs(item))
        return tuple(flat)
    raise TypeError(f"module returned {type(result).__name__}; expected a tensor or a list/tuple of tensors")


class FlatIO(nn.Module):
    """forward(*tensors) -> tuple of tensors, whatever the wrapped module's calling convention."""

    def __init__(self, model: nn.Module, call: str = "args"):
        super().__init__()
        self.model = model
        self.call = call

    def forward(self, *inputs: torch.Tensor):
        result = self.model(list(inputs)) if self.call == "list" else self.model(*inputs)
        return flatten_outputs(result)
