"""Deterministic weights for zoo artifacts, and loading a user's checkpoint.

A zoo artifact is built from seeded weights with non-trivial BatchNorm statistics (a fresh module's
running mean 0 / var 1 would hide BN-folding mistakes). The exact state_dict used is stored next
to the ONNX so every later check compares against the same PyTorch weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import DeployKitError

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def seeded_model(recipe, seed: int = 0) -> nn.Module:
    """The recipe's module with seeded parameters and seeded, non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = recipe.build()
    randomize_norm_stats(model, seed)
    return model.eval()


def randomize_norm_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _NORMS) and module.track_running_stats:
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) * 0.8 + 0.6)
                if module.affine:
                    module.weight.copy_(1.0 + 0.2 * torch.randn(module.weight.shape, generator=generator))
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return model


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict (or a dict holding one under "state_dict"/"model") with strict=True."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DeployKitError(f"checkpoint {path} does not exist") from None
    except Exception as exc:
        raise DeployKitError(f"checkpoint {path} cannot be read: {exc}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise DeployKitError(f"checkpoint {path} does not fit the module: {first}") from None
    return model.eval()
