"""The weights an export writes: the user's own, exactly, or seeded reference weights for the zoo.

A user's module (a factory, or a checkpoint) is exported with its weights untouched: nothing here
re-initialises, re-seeds or re-measures it (``reference_module``). Seeded weights are for zoo
recipes only: a zoo artifact is built from seeded weights with non-trivial BatchNorm statistics (a fresh module's
running mean 0 / var 1 would hide BN-folding mistakes). The statistics are measured on seeded recipe
inputs, as training would: random statistics let activations shrink stage by stage until a deep
network's output no longer depends on its input (composite's logits varied by 1e-7 across inputs),
and parity checks on such a network prove little. The exact state_dict used is stored next to the
ONNX so every later check compares against the same PyTorch weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..families import as_exported
from ..runners.torch_runner import FlatIO
from ..store.files import sha256_file

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def reference_module(recipe, checkpoint: str | Path | None = None, seed: int = 0,
                     model: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """The module an export writes (and every later check compares against), and where its weights came from.

    - ``model``: the user's module, handed over (the Python API, or the factory the recipe-free CLI called once);
    - ``checkpoint``: the recipe's module (or ``model``) with that state_dict loaded (strict);
    - a user's factory (``factory = "pkg.mod:fn"``): the module exactly as the factory returned it. Never
      re-seeded, never re-measured: those are the user's trained weights;
    - a zoo recipe: seeded reference weights (``seeded_model``), so zoo artifacts are reproducible.

    A module of a known family (families/) is returned with its family's export switches set, on a copy."""
    if model is None and checkpoint is None and recipe.module is not None:
        return seeded_model(recipe, seed), {"source": "seeded", "seed": seed, "zoo": recipe.module}
    model = recipe.build() if model is None else model
    if checkpoint is not None:
        model = load_checkpoint(model, checkpoint)
        weights = {"source": "checkpoint", "path": str(checkpoint), "sha256": sha256_file(checkpoint)}
    elif recipe.factory is not None:
        weights = {"source": "factory", "factory": recipe.factory}
    else:
        weights = {"source": "module", "module": type(model).__name__}
    model, family = as_exported(model)
    if family is not None:
        weights["family"] = family
    return model, weights


def describe_weights(weights: dict) -> str:
    """One line for the CLI: where the exported weights came from."""
    family = weights.get("family")
    switched = f"; {family['family']}: {', '.join(family['notes'])}" if family and family.get("notes") else ""
    if weights["source"] == "checkpoint":
        return f"weights from the checkpoint {weights['path']} (sha256 {weights['sha256'][:12]}){switched}"
    if weights["source"] == "factory":
        return f"weights as returned by the factory {weights['factory']} (unchanged){switched}"
    if weights["source"] == "module":
        return f"weights of the {weights['module']} module handed over (unchanged){switched}"
    return f"seeded reference weights (zoo module {weights['zoo']!r}, seed {weights['seed']})"


def seeded_model(recipe, seed: int = 0, batches: int = 4) -> nn.Module:
    """The recipe's module with seeded parameters, seeded BN affine terms and measured BN statistics.

    Deterministic, so the result is kept per (recipe file, seed) for the life of the process: a fitted
    reference (composite's 150-step fit) is paid for once, not by every export and test that builds it."""
    key = (str(recipe.path), recipe.sha256, seed, batches)
    if key in _SEEDED:
        model = recipe.build()
        model.load_state_dict(_SEEDED[key])
        return model.eval()
    torch.manual_seed(seed)
    model = recipe.build()
    randomize_norm_affine(model, seed)
    measure_norm_stats(model, recipe, seed, batches)
    fit = getattr(model, "fit_reference", None)
    if callable(fit):  # a whole network whose random weights would not be representative (e.g. for INT8)
        with deterministic():
            fit(recipe, seed)
    _SEEDED[key] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model.eval()


_SEEDED: dict[tuple, dict] = {}


class deterministic:
    """Deterministic kernels on one thread for a block, so seeded training gives the same weights on
    every run and every machine (a multi-threaded reduction's order depends on the core count; and
    under CPU contention two spinning OpenMP threads made a 7 s fit take 150 s)."""

    def __enter__(self):
        self.previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.previous[0])
        torch.set_num_threads(self.previous[1])
        return False


def randomize_norm_affine(model: nn.Module, seed: int = 0) -> nn.Module:
    """gamma ~ 1 +- 0.2, beta ~ 0 +- 0.1: folding them into convs must be exact, so they must not be 1 and 0."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _NORMS) and module.affine:
                module.weight.copy_(1.0 + 0.2 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return model


def measure_norm_stats(model: nn.Module, recipe, seed: int = 0, batches: int = 4) -> nn.Module:
    """Running mean/var as the average over ``batches`` seeded inputs at the opt shape (momentum=None)."""
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    if not norms:
        return model
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    flat = FlatIO.of(model, recipe).train()
    case = recipe.case("opt")
    with torch.no_grad():
        for i in range(batches):
            feed = recipe.make_inputs(case, seed=seed + 1000 + i)
            flat(*[torch.from_numpy(feed[t.name]) for t in recipe.inputs])
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return model.eval()
