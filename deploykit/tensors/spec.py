"""The one range type (DimSpec) and the one tensor descriptor (TensorSpec): recipes, manifests (runtime,
serve, Triton), TensorRT profiles and runners all use them. Part of the base layer: imports only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shapes import DimExpr, allowed_values


@dataclass(frozen=True)
class DimSpec:
    """What one symbol may be: ``min..max`` in steps of ``multiple_of`` (``opt`` for examples and
    TensorRT profiles), or one fixed ``value`` with its ``reason`` (then min = opt = max = value).

    The one range type: recipes, manifests (runtime, serve, Triton) and TensorRT profiles all use it.
    """

    name: str
    min: int = 0
    opt: int = 0
    max: int = 0
    multiple_of: int = 1
    value: int | None = None
    reason: str = ""

    def __post_init__(self):
        if self.value is not None:  # a fixed dim spans exactly its value
            for bound in ("min", "opt", "max"):
                object.__setattr__(self, bound, self.value)

    @property
    def is_static(self) -> bool:
        return self.value is not None

    def allowed(self) -> range:
        if self.is_static:
            return range(self.value, self.value + 1)
        return allowed_values(self.min, self.max, self.multiple_of)

    def problem(self, value: int, owner: str = "recipe") -> str | None:
        """None when ``value`` is allowed, else what is wrong with it (for a one-line error)."""
        if self.is_static:
            return None if value == self.value else f"must be {self.value} ({self.reason})"
        if not self.min <= value <= self.max:
            return f"is outside the {owner}'s range [{self.min}, {self.max}]"
        if value % self.multiple_of:
            return f"must be a multiple of {self.multiple_of} (the {owner}'s range is [{self.min}, {self.max}])"
        return None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, dtype and dims (ints for static axes, DimExprs such as ``4*H``;
    None where a backend reports an axis it cannot name), and for recipe inputs the distribution
    checks and synthetic calibration draw from. The one tensor descriptor: recipes, manifests and runners."""

    name: str
    shape: tuple  # of int | DimExpr | None
    dist: str = "normal"
    mean: float = 0.0
    std: float = 1.0
    low: float = -1.0
    high: float = 1.0
    dtype: np.dtype = np.dtype(np.float32)

    def dim_names(self) -> list[str | int]:
        return [d.text if isinstance(d, DimExpr) else "?" if d is None else d for d in self.shape]

    def describe(self) -> str:
        return "(" + ", ".join(str(d) for d in self.dim_names()) + ")"

    def kserve_shape(self, values: dict[str, int]) -> list[int]:
        """Sizes with -1 for every axis whose symbol has no value in ``values`` (the KServe/Triton convention)."""
        return [d if isinstance(d, int) else d.evaluate(values) if isinstance(d, DimExpr) and d.symbol in values else -1
                for d in self.shape]
