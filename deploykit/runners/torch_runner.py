"""The reference: the PyTorch module itself, run in eval mode under inference_mode on CPU.

FlatIO bridges a recipe's named, flat inputs/outputs and a module's own forward signature: some zoo
modules take one list (FPN, ASFF, PMFS: ``call = "list"``) or return a list; ONNX wants positional
tensors in and a flat tuple out. The exporter and this runner share that one mapping.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..guard import guarded_forward
from ..structure import flatten
from .base import Runner


class FlatIO(nn.Module):
    """forward(*tensors) -> tuple of tensors, whatever the wrapped module's calling convention and output
    structure (the last structure it returned is kept in ``structure``, for the manifest)."""

    def __init__(self, model: nn.Module, call: str = "args", names: tuple[str, ...] = ()):
        super().__init__()
        self.model = model
        self.call = call
        self.names = tuple(names)  # the inputs' names, for call = "kwargs"
        self.structure = None

    def forward(self, *inputs: torch.Tensor):
        with guarded_forward():  # the user's code: a time limit, and its sys.exit/os._exit become errors
            if self.call == "list":
                result = self.model(list(inputs))
            elif self.call == "kwargs":
                result = self.model(**dict(zip(self.names, inputs)))
            else:
                result = self.model(*inputs)
        leaves, self.structure = flatten(result, torch.is_tensor)
        return tuple(leaves)

    @classmethod
    def of(cls, model: nn.Module, recipe) -> "FlatIO":
        return cls(model, recipe.call, tuple(t.name for t in recipe.inputs))


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model: torch.nn.Module, recipe, threads: int | None = None):
        super().__init__()
        self.recipe = recipe
        self.flat = FlatIO.of(model.eval(), recipe)
        self.threads = threads
        self._flat64 = None  # a float64 copy, made on first use (the noise floor, parity/metrics.py)

    def activate(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)

    def input_metadata(self):
        return list(self.recipe.inputs)

    def _run(self, flat, feed, dtype=None):
        # a copy per run: a forward that changes its input in place (x.mul_(2)) must not change the feed that
        # the candidate runtime, or the next reference run, receives
        tensors = [torch.tensor(np.asarray(feed[t.name])) for t in self.recipe.inputs]
        if dtype is not None:
            tensors = [t.to(dtype) for t in tensors]
        with torch.inference_mode():
            outputs = flat(*tensors)
        names = [t.name for t in self.recipe.outputs]
        if len(outputs) != len(names):
            raise RuntimeError(f"module returned {len(outputs)} outputs, the recipe declares {len(names)}")
        return {n: o.detach().cpu().numpy() for n, o in zip(names, outputs)}

    def infer_impl(self, feed):
        return self._run(self.flat, feed)

    def infer_float64(self, feed) -> dict | None:
        """The same module in float64 (None when it cannot run so: e.g. a custom op without a double kernel)."""
        if self._flat64 is False:
            return None
        try:
            if self._flat64 is None:
                self._flat64 = copy.deepcopy(self.flat).double()
            return self._run(self._flat64, feed, torch.float64)
        except Exception:  # float64 is a refinement of the check, never a reason to fail it
            self._flat64 = False
            return None

    def describe(self) -> dict:
        return {"runner": self.name, "torch": torch.__version__, "threads": torch.get_num_threads()}
