"""What a recipe is, once validated: dims, tensors, tolerances, calibration settings, the module to build.

Loading and validation are in load.py; the format is documented in the README ("Recipe format").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DeployKitError, UserCodeError
from ..guard import user_code
from ..tensors.synthetic import smooth_fields
from ..tensors.shapes import DimExpr, ShapeCase, resolve_shape, sweep
from ..tensors.spec import DimSpec, TensorSpec
from .factory import import_factory

DISTRIBUTIONS = ("normal", "uniform", "smooth")  # smooth: image-like fields in [0, 1] (tensors/synthetic.py)

# Sensible defaults per precision: fp32 is strict elementwise; fp16 and int8 are judged by cosine and SNR
# floors, because an elementwise 1e-5 for fp16 is the known false-failure trap.
DEFAULT_TOLERANCES = {
    "fp32": {"atol": 1e-4, "rtol": 1e-4, "cosine_min": 0.99999, "snr_min_db": None},
    "fp16": {"atol": 5e-2, "rtol": 5e-2, "cosine_min": 0.999, "snr_min_db": 30.0},
    "int8": {"atol": None, "rtol": None, "cosine_min": 0.98, "snr_min_db": 12.0},
}

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def zoo():
    """deploykit.zoo, imported when a recipe names a zoo module: the zoo's modules import torch, which
    ``deploykit --help``, ``list`` and reading a recipe must not."""
    from .. import zoo as package  # function-level: the zoo imports torch (see above)

    return package


class RecipeError(DeployKitError):
    pass


@dataclass(frozen=True)
class Tolerance:
    atol: float | None
    rtol: float | None
    cosine_min: float | None
    snr_min_db: float | None


@dataclass(frozen=True)
class CalibrationSpec:
    """The optional ``[calibration]`` table: how images become model input, and the default method.

    Images are read as ``color``, resized to ``resize`` (H, W; default: the opt shape), scaled by
    ``scale``, normalised per channel by ``mean``/``std``, laid out as ``layout`` and fed to ``input``.
    """

    input: str | None = None
    layout: str = "NCHW"
    color: str = "RGB"
    resize: tuple[int, int] | None = None
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    batch: int | None = None
    method: str | None = None

    def as_dict(self) -> dict:
        return {"input": self.input, "layout": self.layout, "color": self.color,
                "resize": list(self.resize) if self.resize else None, "scale": self.scale,
                "mean": list(self.mean), "std": list(self.std), "batch": self.batch, "method": self.method}


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    module: str | None
    factory: str | None
    summary: str
    opset: int
    call: str
    args: dict
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    dims: dict[str, DimSpec]
    tolerances: dict[str, Tolerance]
    sha256: str = field(repr=False)
    text: str = field(repr=False, default="")  # the TOML it was loaded from (copied into every artifact)
    calibration: CalibrationSpec = field(default_factory=CalibrationSpec)
    # False for a recipe the user did not hand over (an artifact's own recipe.toml, found by name): an artifact is
    # untrusted input, so its factory is neither imported nor called unless it is deploykit's own (the zoo)
    trusted: bool = field(default=True, compare=False)
    # set for a recipe deploykit.export wrote for a module it was handed in memory (the class name): there is no
    # code to build it from; later steps compare against the PyTorch reference the artifact stores
    in_memory: str | None = None

    # -- shapes -------------------------------------------------------------------------------
    @property
    def dynamic_symbols(self) -> list[str]:
        return [n for n, d in self.dims.items() if not d.is_static]

    @property
    def static_symbols(self) -> list[str]:
        return [n for n, d in self.dims.items() if d.is_static]

    @property
    def batch_symbol(self) -> str | None:
        """The dynamic symbol every input carries, unscaled, on axis 0 (the batch axis), if there is one."""
        symbols = {t.shape[0].symbol if isinstance(t.shape[0], DimExpr) and t.shape[0].scale == 1 else None
                   for t in self.inputs}
        if len(symbols) != 1:
            return None
        symbol = symbols.pop()
        return symbol if symbol is not None and not self.dims[symbol].is_static else None

    def case(self, label: str) -> ShapeCase:
        return ShapeCase(label, {n: d.value if d.is_static else getattr(d, label) for n, d in self.dims.items()})

    def sweep(self, seed: int = 0, off_grid: int = 2, edges: bool = False, samples: int = 0) -> list[ShapeCase]:
        return sweep(self.dims, seed=seed, off_grid=off_grid, edges=edges, samples=samples)

    def input_shapes(self, case: ShapeCase) -> dict[str, tuple[int, ...]]:
        return {t.name: resolve_shape(t.shape, case.values) for t in self.inputs}

    def output_shapes(self, case: ShapeCase) -> dict[str, tuple[int, ...]]:
        return {t.name: resolve_shape(t.shape, case.values) for t in self.outputs}

    def check_case(self, case: ShapeCase) -> None:
        """Raise RecipeError when a user-given case is outside what the recipe allows."""
        for name, spec in self.dims.items():
            if name not in case.values:
                raise RecipeError(f"{self.path}: shape {case.describe()}: no value for {name}")
            problem = spec.problem(case.values[name])
            if problem:
                raise RecipeError(f"{self.path}: {name}={case.values[name]} {problem}")

    def make_inputs(self, case: ShapeCase, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded inputs drawn from each input's declared distribution (float32)."""
        rng = np.random.default_rng([seed, *case.values.values()])
        feed = {}
        for spec, shape in zip(self.inputs, self.input_shapes(case).values()):
            if spec.dist == "uniform":
                feed[spec.name] = rng.uniform(spec.low, spec.high, size=shape).astype(np.float32)
            elif spec.dist == "smooth":
                feed[spec.name] = smooth_fields(rng, shape)
            else:
                feed[spec.name] = (rng.standard_normal(shape) * spec.std + spec.mean).astype(np.float32)
        return feed

    # -- the module ---------------------------------------------------------------------------
    @property
    def runs_own_code(self) -> bool:
        """Whether building this recipe may run its factory: the user's recipe, or one naming deploykit's zoo."""
        if self.in_memory is not None:
            return False
        return self.trusted or self.module is not None or self.factory.partition(":")[0].split(".")[:2] == ["deploykit", "zoo"]

    @property
    def source(self) -> str:
        """What builds the module, for messages: the zoo name, the factory, or the in-memory class."""
        return self.module or self.factory or f"a {self.in_memory} module in memory (deploykit.export)"

    def factory_callable(self) -> Callable:
        if self.module is not None:
            return zoo().get(self.module).factory
        if self.in_memory is not None:
            raise RecipeError(f"{self.path}: the artifact was exported from {self.source}: there is no code to build "
                              "it from; pass the module (deploykit.verify(..., model=m)), or a factory with --module")
        if not self.runs_own_code:
            raise RecipeError(f"{self.path}: the artifact names the factory {self.factory!r}, and deploykit runs no "
                              f"code an artifact names: pass --module {self.factory} if it is your code, or --trust-code")
        factory = import_factory(self.factory, self.path)
        if not self.trusted and not getattr(factory, "__module__", "").startswith("deploykit.zoo"):
            # `deploykit.zoo.x:os.system` resolves through the zoo module's imports: only the zoo's own callables count
            raise RecipeError(f"{self.path}: factory {self.factory!r} is not one of deploykit's zoo modules; pass "
                              "--trust-code to run it")
        return factory

    def build(self):
        """The module in eval mode, built from the recipe's constructor arguments, exactly as the factory
        returns it (its weights untouched). Anything the factory raises is the user's error, one line."""
        from torch import nn

        factory = None if self.module is not None else self.factory_callable()  # in memory: nothing to build from
        what = f"{'zoo module ' + repr(self.module) if self.module else 'the factory ' + self.factory}" \
               f"({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"
        if self.module is not None:
            with user_code(what):
                model = zoo().create(self.module, **self.args)
        else:
            with user_code(what):
                model = factory(**self.args)
        if not isinstance(model, nn.Module):
            raise UserCodeError(f"{what} returned {type(model).__name__}, not a torch.nn.Module")
        return model.eval()

    def tolerance(self, precision: str) -> Tolerance:
        return self.tolerances[precision]
