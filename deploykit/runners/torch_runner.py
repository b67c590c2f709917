"""The reference: the PyTorch module itself, run in eval mode under no_grad on CPU."""

from __future__ import annotations

import numpy as np
import torch

from ..adapter import FlatIO
from .base import Runner, TensorMeta


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model: torch.nn.Module, recipe, threads: int | None = None):
        super().__init__()
        self.recipe = recipe
        self.flat = FlatIO(model.eval(), recipe.call)
        self.threads = threads

    def activate(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)

    def input_metadata(self) -> list[TensorMeta]:
        return [TensorMeta(t.name, np.dtype(np.float32), tuple(t.dim_names())) for t in self.recipe.inputs]

    def infer_impl(self, feed):
        tensors = [torch.from_numpy(np.ascontiguousarray(feed[t.name])) for t in self.recipe.inputs]
        with torch.inference_mode():
            outputs = self.flat(*tensors)
        names = [t.name for t in self.recipe.outputs]
        if len(outputs) != len(names):
            raise RuntimeError(f"module returned {len(outputs)} outputs, the recipe declares {len(names)}")
        return {n: o.detach().cpu().numpy() for n, o in zip(names, outputs)}

    def describe(self) -> dict:
        return {"runner": self.name, "torch": torch.__version__, "threads": torch.get_num_threads()}
