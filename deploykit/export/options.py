"""``ExportOptions``: how ``export_onnx`` exports, as one frozen value (``deploykit export``'s flags, the Python API's
keyword arguments), checked in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployKitError
from ..reference import DEFAULT_BOUND_MB
from .guards import ANALYSIS_BUDGET_S

EXPORTER_CHOICES = ("auto", "torchscript", "dynamo")
OPSETS = range(13, 24)  # what the exporters and the checks support


@dataclass(frozen=True)
class ExportOptions:
    opset: int | None = None  # None: the recipe's
    exporter: str = "auto"  # auto: TorchScript, then dynamo
    simplify: bool = True  # onnxsim and onnxslim, the smallest passing graph kept
    static: bool = False  # every axis fixed at the export (opt) shape
    rewrites: bool = True  # exact rewrites of unsafe modules, proven equal in PyTorch
    optimize: bool = True  # exact onnxruntime graph optimizations, kept only if parity still holds
    force: bool = False  # overwrite files deploykit did not write (or that changed since)
    checkpoint: str | Path | None = None  # a state_dict loaded (strict) into the module first
    seed: int = 0  # of the zoo's weights and the checks' inputs
    analysis_budget: float | None = ANALYSIS_BUDGET_S  # seconds for torch.export's range analysis (None: no limit)
    reference_mb: float = DEFAULT_BOUND_MB  # bound on PyTorch's outputs stored in the artifact (0: none)

    def opset_for(self, recipe) -> int:
        return recipe.opset if self.opset is None else self.opset

    def check(self, recipe=None) -> None:
        """One-line DeployKitError for an option no export can take (the opset resolved against ``recipe``)."""
        if self.exporter not in EXPORTER_CHOICES:
            raise DeployKitError(f"--exporter must be one of {', '.join(EXPORTER_CHOICES)}, got {self.exporter!r}")
        opset = self.opset if recipe is None else self.opset_for(recipe)
        if opset is not None and opset not in OPSETS:
            default = f"; the recipe's default is {recipe.opset}" if recipe is not None else ""
            raise DeployKitError(f"opset {opset} is not supported (use {OPSETS[0]}..{OPSETS[-1]}{default})")
