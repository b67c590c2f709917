"""The factory the benchmark hands to deploykit (`--module timm_factory:create`): a timm network with
trained-like weights, built on CPU with pretrained=False (nothing is downloaded).

Why not `timm.models:NAME` directly: timm's fresh initialisation hides export bugs. BatchNorm has running
mean 0 / var 1, timm zero-initialises the last BatchNorm gamma of every residual block
(`zero_init_last`), and ConvNeXt's layer scale starts at 1e-6, so whole residual branches contribute
nothing and an export that gets them wrong would still match PyTorch. A trained network has none of
this, so the factory gives every constant-initialised parameter (zero biases, unit/zero norm scales,
1e-6 layer scales) seeded values and measures BatchNorm statistics on seeded inputs, as training would.
The weights are the same on every call (timm's initialisation seeded, own generator), so the naive baseline, deploykit and the
independent check all see one network. Independent of deploykit: plain torch and timm only.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def create(model_name: str, stats_hw: list[int] | None = None, seed: int = 0, **kwargs) -> nn.Module:
    """``timm.create_model(model_name, pretrained=False, **kwargs)`` with trained-like weights, in eval mode.

    ``stats_hw``: the (H, W) of the seeded batches BatchNorm statistics are measured on (the model's
    export size; fixed-size models need theirs).
    """
    with torch.random.fork_rng():  # timm initialises from the global RNG: seeded here, and left as it was
        torch.manual_seed(seed)
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    _perturb_constant_parameters(model, generator)
    _measure_norm_stats(model, generator, stats_hw or [128, 128])
    return model.eval()


def _perturb_constant_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """Every parameter whose elements are all equal (an initialiser's constant) gets seeded values
    around a scale a trained network would have: ~1 for scales, ~0.05 for biases."""
    with torch.no_grad():
        for module in model.modules():
            is_norm = isinstance(module, (*_NORMS, nn.LayerNorm, nn.GroupNorm))
            for name, param in module.named_parameters(recurse=False):
                flat = param.detach().reshape(-1)
                if flat.numel() < 2 or not bool((flat == flat[0]).all()):
                    continue
                noise = torch.randn(param.shape, generator=generator)
                value = float(flat[0])
                if is_norm and name == "weight":  # unit (or zero-init-last) norm scale
                    param.copy_(1.0 + 0.2 * noise)
                elif name in ("bias", "beta") or "bias" in name or value == 0.0 and param.dim() > 1:
                    param.copy_(0.05 * noise)  # zero bias (or a zero-initialised weight)
                elif abs(value) < 0.1:  # layer scale (ConvNeXt 1e-6, CaiT/DeiT-3 style) and similar gammas
                    param.copy_(0.5 + 0.1 * noise)
                else:
                    param.copy_(value * (1.0 + 0.1 * noise))


def _measure_norm_stats(model: nn.Module, generator: torch.Generator, hw: list[int], batches: int = 2) -> None:
    """Running mean/var as the average over seeded batches (momentum=None), in train mode, as training
    leaves them: random statistics would let activations shrink or blow up layer by layer."""
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, 3, *hw, generator=generator))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()
