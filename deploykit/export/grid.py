"""A condition on sizes (a sympy expression from torch.export's shape environment) evaluated at every point
of a declared grid: vectorised with numpy where sympy's printer can express it (checked against sympy itself
at a few points), else point by point. Written here because no library evaluates torch's sympy functions
(FloorDiv, PythonMod, ...) over a grid."""

from __future__ import annotations

import numpy as np
import sympy

MAX_GRID = 1_000_000  # points per condition evaluated (vectorised); a wider one is not evaluated

# torch's sympy functions (torch/utils/_sympy/functions.py) on numpy int64 arrays, for lambdify
_NUMPY_FUNCTIONS = {
    "FloorDiv": np.floor_divide, "CleanDiv": np.floor_divide, "IntTrueDiv": np.true_divide,
    "FloatTrueDiv": np.true_divide, "CeilDiv": lambda a, b: -np.floor_divide(-a, b),
    "PythonMod": np.mod, "Mod": np.mod, "ModularIndexing": lambda x, d, m: np.mod(np.floor_divide(x, d), m),
    "TruncToInt": np.trunc, "FloorToInt": np.floor, "CeilToInt": np.ceil, "Identity": lambda x: x,
    "ToFloat": lambda x: np.asarray(x, dtype=np.float64), "PowByNatural": np.power, "Max": np.maximum,
    "Min": np.minimum,
}


def as_python(expr) -> str:
    from torch.utils._sympy.printers import PythonPrinter

    try:
        return PythonPrinter().doprint(expr)
    except Exception:  # a printer gap never hides a guard: sympy's own form
        return str(expr)


def failing_points(expr, symbols, axes: dict, recipe, limit: int) -> list[dict] | None:
    """The declared points (values of the recipe symbols ``expr`` names) where it is false: at most
    limit of them; None when the grid is too large to evaluate."""
    names = sorted({axes[s].symbol for s in symbols})
    grids = [recipe.dims[n].allowed() for n in names]
    size = int(np.prod([len(g) for g in grids], dtype=np.float64))
    if size > MAX_GRID:
        return None
    mesh = np.meshgrid(*[np.asarray(g, dtype=np.int64) for g in grids], indexing="ij")
    columns = {n: m.ravel() for n, m in zip(names, mesh)}
    values = [columns[axes[s].symbol] * axes[s].scale.numerator // axes[s].scale.denominator for s in symbols]
    holds = _vectorised(expr, symbols, values)
    if holds is None:  # lambdify could not express it: one point at a time
        holds = np.array([_holds(expr, symbols, [int(v[i]) for v in values]) for i in range(size)])
    bad = np.flatnonzero(~holds)[:limit]
    return [{n: int(columns[n][i]) for n in names} for i in bad]


def _vectorised(expr, symbols, values) -> np.ndarray | None:
    try:
        function = sympy.lambdify(symbols, expr, modules=[_NUMPY_FUNCTIONS, "numpy"])
        holds = np.broadcast_to(np.asarray(function(*values), dtype=bool), values[0].shape)
    except Exception:  # an unknown function or a type numpy refuses: evaluated point by point instead
        return None
    # the printer is trusted only where it agrees with sympy itself (first, last, and first failing point)
    probes = {0, len(holds) - 1, *np.flatnonzero(~holds)[:1].tolist()}
    if any(bool(holds[i]) != _holds(expr, symbols, [int(v[i]) for v in values]) for i in probes):
        return None
    return holds


def _holds(expr, symbols, point: list[int]) -> bool:
    return bool(expr.xreplace({s: sympy.Integer(v) for s, v in zip(symbols, point)}))


