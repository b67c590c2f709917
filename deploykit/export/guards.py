"""The range analysis: every shape guard of the module, evaluated by deploykit at every declared point.

A trace is one branch of the module's Python control flow. torch.export traces it with one symbol per
dynamic input axis and records, in its shape environment, each condition on sizes that the branch
taken depends on (``Ne(s3, 40)`` for ``if x.shape[2] == 40``, ``Ne(Mod(s3, 7), 0)`` for a residue,
``s0 <= 3`` for a threshold, ``Eq(s0, 2)`` for a cache keyed on the shape). Where every guard holds,
the module runs the traced branch: the trace is right there. Whether torch.export *raises* on a guard
depends on how the range was declared (a stepped ``8*Dim`` range records ``8*s != 40`` and returns
without error), so nothing here reads its silence: the axes are declared ``Dim.AUTO`` (record, never
raise), the guards are read from the shape environment, and each is evaluated at every point of the
declared grid of the symbols it names. The grid is finite (min..max in steps), so this is exhaustive,
and no verdict depends on which shapes a sweep draws.

Where a guard is false, the module takes another branch and the trace may be wrong. Those points are
few for most guards (``H != 40`` fails at one value): up to ``MAX_CHECK_POINTS`` of them, the export is
compared with PyTorch at each (the other axes at the example's values) and accepted only if it matches
everywhere, with the points named in the manifest ("partitioned"); more, and the export is refused in
one line naming the user's source line, the guard in the recipe's axis names and a declared value where
it fails. torch.export assumes every dynamic size is at least 2, so a declared size of 1 is checked
the same way.

When torch.export cannot trace the module (detectors with data-dependent output sizes, unsupported
Python), the range is "sampled, not proved": the manifest says so and verify then covers every declared
value of each dynamic axis (verify/harness.py).
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from dataclasses import dataclass, field

import sympy
import torch

from ..environment import quiet
from ..errors import ExportRefused, _user_frame, first_line
from ..recipe.coverage import every_value_cases
from ..tensors.shapes import DimExpr, ShapeCase, describe_values
from .budget import OutOfTime, Pending, start_forked
from .grid import MAX_GRID, as_python, failing_points
from .specialise import Site, cut, is_user_file, refuse

MAX_CHECK_POINTS = 64  # declared points where a guard is false that export may check one by one
ANALYSIS_BUDGET_S = 60.0  # torch.export's time before the range is declared sampled (export --analysis-budget)
_SOURCE = re.compile(r"L\['inputs'\]\[(\d+)\]\.size\(\)\[(\d+)\]")

@dataclass(frozen=True)
class Guard:
    """One recorded guard that is false somewhere in the declared range."""

    text: str  # in the recipe's axis names: "H != 40"
    site: Site | None
    failing: tuple  # declared points (dicts of recipe symbols) where it is false, up to MAX_CHECK_POINTS + 1

    @property
    def in_torch(self) -> bool:
        """Recorded inside torch's operators (a Linear's matmul over the axis), not by a line of the user's."""
        return self.site is not None and not is_user_file(self.site.file)

    def describe(self) -> str:
        if self.in_torch:
            return (f"`{self.text}` (recorded inside torch, at {self.site.file.rsplit('site-packages/', 1)[-1]}:"
                    f"{self.site.line}: an operator depends on this size, as a Linear's weights over the axis or a "
                    "contiguity check)")
        return f"`{self.text}`" + (f" at {self.site.describe()}" if self.site else "")


@dataclass
class RangeAnalysis:
    """What the analysis concluded, for export's checks and the manifest."""

    status: str  # proved | partitioned | sampled | static
    detail: str
    guards: int = 0
    violated: list[Guard] = field(default_factory=list)
    check_cases: list[ShapeCase] = field(default_factory=list)  # where the export must be compared too
    random_ops: list[str] = field(default_factory=list)  # random ops in the traced graph, with the user's line

    def as_dict(self) -> dict:
        return {"status": self.status, "detail": self.detail, "guards_evaluated": self.guards,
                "violated": [g.describe() for g in self.violated],
                "checked_points": [c.values for c in self.check_cases]}

    def guarded(self, values: dict) -> bool:
        """Whether a recorded guard is false at ``values``: the module takes another branch there."""
        return any(all(values.get(k) == v for k, v in point.items()) for g in self.violated for point in g.failing)

    def refusal(self, case: ShapeCase, failure: str) -> str:
        """The one line when the export differs from PyTorch at ``case``, a point where a guard is false."""
        guard = next((g for g in self.violated if any(all(case.values.get(k) == v for k, v in p.items())
                                                     for p in g.failing)), None) if self.guarded(case.values) else None
        if self.status == "sampled":
            return (f"the trace is specialised to its example shape: it differs from PyTorch at {case.describe()} "
                    f"(declared; {cut(failure, 120)}); the range could not be proved ({cut(self.detail, 160)}), so "
                    "export compared every declared value of each axis; make the code shape-independent or declare "
                    "the axis static")
        if guard is None:  # a size of 1, which torch.export assumed away
            return (f"the trace is specialised to its example shape (it assumes every dynamic size is at least 2): "
                    f"it differs from PyTorch at {case.describe()} ({failure}); "
                    "declare the axis from 2, or make the code size-1 safe")
        return (f"the trace is specialised to its example shape: it holds only where {guard.describe()}, and "
                f"at {case.describe()} (declared) it differs from PyTorch ({cut(failure, 120)}); "
                "make the code shape-independent (tensor ops such as torch.where), narrow the declared range, "
                "or declare the axis static")


    def dynamo_refusal(self) -> str:
        """The dynamo exporter narrows a range to where its guards hold, silently (TOOLCHAIN.md): with a
        guard false at a declared point it is not used."""
        guard = self.violated[0]
        return (f"the trace is specialised to its example shape: it holds only where {guard.describe()}, false at "
                f"{describe_values(guard.failing[0])} (declared), and the dynamo exporter would narrow the range to "
                "where it holds; make the code shape-independent (tensor ops such as torch.where), narrow the "
                "declared range, or declare the axis static")


def dynamic_axes_auto(recipe) -> dict:
    """torch.export's dynamic_shapes for FlatIO(*inputs): ``Dim.AUTO`` on every dynamic input axis."""
    shapes = []
    for tensor in recipe.inputs:
        shapes.append({axis: torch.export.Dim.AUTO for axis, dim in enumerate(tensor.shape)
                       if isinstance(dim, DimExpr) and not recipe.dims[dim.symbol].is_static})
    return {"inputs": tuple(shapes)}


def _private_copy(flat):
    """A copy to trace: torch.export runs forward with symbolic sizes, and a module that caches on its
    input shape (a detection head's anchors) would keep symbolic values in the user's own module."""
    try:
        return copy.deepcopy(flat)
    except Exception:  # a module that cannot be copied is traced as it is
        return flat


def _shape_env(program):
    for node in program.graph.nodes:
        value = node.meta.get("val")
        mode = getattr(value, "fake_mode", None)
        if mode is not None and getattr(mode, "shape_env", None) is not None:
            return mode.shape_env
    return None


def _data_dependent(exc: Exception) -> bool:
    return "data-dependent" in str(exc) or type(exc).__name__ in (
        "GuardOnDataDependentSymNode", "DataDependentOutputException", "DynamicOutputShapeException")


class PendingAnalysis:
    """The range analysis under way in a forked child (budget.py), while export goes on with the TorchScript
    exporter: two cores, two halves of the work. ``result()`` waits for it, up to the budget."""

    def __init__(self, pending, recipe, budget):
        self.pending, self.recipe, self.budget, self._result = pending, recipe, budget, None

    def cancel(self) -> None:
        self.pending.cancel()

    def result(self) -> RangeAnalysis:
        if self._result is None:
            try:
                analysis = self.pending.result()
            except OutOfTime:
                analysis = RangeAnalysis("sampled", f"range sampled, not proved: torch.export did not finish within "
                                         f"{self.budget:g} s (export --analysis-budget)")
            except RuntimeError as exc:  # the child failed outside torch.export (out of memory, a signal)
                analysis = RangeAnalysis("sampled", "range sampled, not proved: the analysis failed "
                                         f"({cut(str(exc), 160)})")
            if analysis.status == "sampled":  # export compares every declared value of each axis, a few per axis
                per_axis = MAX_CHECK_POINTS // max(1, len(self.recipe.dynamic_symbols))
                analysis.check_cases = every_value_cases(self.recipe, per_axis)[0]
            self._result = analysis
        return self._result


def start_range_analysis(flat, recipe, example: list[torch.Tensor], example_case: ShapeCase,
                         budget: float | None = ANALYSIS_BUDGET_S) -> PendingAnalysis:
    """Start the analysis: torch.export, then every guard it records evaluated over the declared grid (the module
    docstring); ``result()`` gives the RangeAnalysis, or raises ExportRefused for a data-dependent branch or a guard
    false at more declared points than export may check one by one. With a ``budget`` it runs in a forked child
    killed past it (the range is then sampled, not proved, and the check cases are every declared value of each
    axis); without one, here and now."""
    if all(d.is_static for d in recipe.dims.values()):
        return PendingAnalysis(Pending(None, None, None, (), value=RangeAnalysis("static", "every axis is static")),
                               recipe, budget)
    if budget and _STARTED:  # the second analysis of this process on: warm torch.export here once (below)
        _warm_up()
    _STARTED.append(True)
    pending = start_forked(lambda: _analyse(flat, recipe, example, example_case, copy_module=not budget), budget,
                           passthrough=(ExportRefused,))
    return PendingAnalysis(pending, recipe, budget)


_WARM: list = []
_STARTED: list = []


def _warm_up() -> None:
    """torch.export's first call in a process spends seconds importing and initialising, and a forked child keeps
    nothing of it. A command that exports once lets its child pay (beside the TorchScript exporter); a process
    that exports again (``--all``, a notebook, the tests) pays it here once, and its later children start warm."""
    if _WARM:
        return
    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x * 2

    with quiet(stderr=True), torch.no_grad():
        try:
            torch.export.export(Tiny(), (torch.zeros(2, 3),), dynamic_shapes=({0: torch.export.Dim.AUTO},),
                                strict=False)
        except Exception:  # only a speed-up: the analysis itself reports what torch.export says
            pass
    _WARM.append(True)


def _analyse(flat, recipe, example, example_case, copy_module: bool) -> RangeAnalysis:
    cwd = os.getcwd()
    try:
        with quiet(stderr=True), torch.no_grad():
            module = _private_copy(flat) if copy_module else flat  # a forked child's changes stay in the child
            program = torch.export.export(module.eval(), tuple(example),
                                          dynamic_shapes=dynamic_axes_auto(recipe), strict=False)
    except Exception as exc:  # torch.export raises many types; only a branch on data is a verdict
        if _data_dependent(exc):
            line = re.match(r" at (.*):(\d+)$", _user_frame(exc.__traceback__))
            refuse("data", "specialised to its example data", [Site(line.group(1), int(line.group(2)), "")]
                   if line else [], first_line(exc))
        return RangeAnalysis("sampled", "range sampled, not proved: torch.export could not trace the module "
                             f"({type(exc).__name__}: {cut(first_line(exc), 160)})")
    finally:  # under torch.export the forward guard steps aside (guard.py): a forward's chdir is undone here
        if os.getcwd() != cwd:
            os.chdir(cwd)
    env = _shape_env(program)
    if env is None:
        return RangeAnalysis("sampled", "range sampled, not proved: torch.export recorded no shape environment")
    analysis = _evaluate(env, recipe, example_case)
    analysis.random_ops = _random_ops(program)
    return analysis


def _random_ops(program) -> list[str]:
    """``aten.rand_like at net.py:12``: the random ops of the traced graph, to name a forward that is not repeatable."""
    found = []
    for node in program.graph.nodes:
        name = str(node.target)
        if node.op == "call_function" and any(k in name for k in ("rand", "normal", "bernoulli", "dropout",
                                                                    "multinomial", "uniform", "exponential")):
            lines = re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or "")
            found.append(f"{name.split('.default')[0]}" + (f" at {lines[-1][0]}:{lines[-1][1]}" if lines else ""))
    return found


def _axes(env, recipe) -> dict:
    """torch.export's size symbols -> the recipe's expression for the input axis each one stands for."""
    axes = {}
    for symbol, sources in env.var_to_sources.items():
        for source in sources:
            match = _SOURCE.search(source.name if isinstance(source.name, str) else source.name())
            if match:
                dim = recipe.inputs[int(match.group(1))].shape[int(match.group(2))]
                if isinstance(dim, DimExpr):
                    axes[symbol] = dim
                    break
    return axes


def _recorded(env) -> list[tuple[sympy.Basic, Site | None]]:
    """Every guard and runtime assert in the shape environment, and every replacement (an equality the
    trace assumed), with the user's line where torch recorded one."""
    found = []
    for guard in env.guards:
        found.append((guard.expr, _site(guard.sloc)))
    for asserts in env.deferred_runtime_asserts.values():
        found.extend((a.expr, None) for a in asserts)
    for symbol, value in env.replacements.items():
        found.append((sympy.Eq(symbol, value), None))
    unique: dict = {}
    for expr, site in found:
        if expr not in unique or unique[expr] is None:
            unique[expr] = site
    return list(unique.items())


def _site(sloc) -> Site | None:
    frame = getattr(sloc, "maybe_user_loc", None) or getattr(sloc, "framework_loc", None)
    if hasattr(frame, "filename") and hasattr(frame, "lineno"):
        return Site(frame.filename, int(frame.lineno), "")
    match = re.match(r"(.*):(\d+)", str(frame or ""))
    return Site(match.group(1), int(match.group(2)), "") if match else None


def _evaluate(env, recipe, example_case: ShapeCase) -> RangeAnalysis:
    axes = _axes(env, recipe)
    recorded = _recorded(env)
    violated, unevaluated = [], []
    for expr, site in recorded:
        symbols = sorted(expr.free_symbols, key=str)
        if not symbols:
            continue
        if any(s not in axes for s in symbols):  # a data (unbacked) symbol: torch.export raised for branches on it
            continue
        failing = failing_points(expr, symbols, axes, recipe, MAX_CHECK_POINTS + 1)
        if failing is None:
            unevaluated.append(expr)
        elif failing:
            named = expr.xreplace({s: sympy.Symbol(axes[s].text) for s in symbols})
            violated.append(Guard(as_python(named), site or _same_line_site(recorded, expr), tuple(failing)))
    points = _size_one_points(recipe, example_case)
    for guard in violated:
        points.extend(guard.failing)
    cases = _check_cases(points, example_case)
    if violated and len(cases) > MAX_CHECK_POINTS:
        guard = max(violated, key=lambda g: len(g.failing))
        refuse("shape", "specialised to its example shape", [guard.site] if guard.site else [],
               f"it holds only where `{guard.text}`, which is false at "
               f"{'more than ' if len(guard.failing) > MAX_CHECK_POINTS else ''}{len(guard.failing)} declared "
               f"values, e.g. {describe_values(guard.failing[0])}")
    checked = f"{len(recorded)} guard(s) evaluated at every declared value of the symbols they name"
    if unevaluated:
        return RangeAnalysis("sampled", f"range sampled, not proved: {len(unevaluated)} guard(s) span more than "
                             f"{MAX_GRID} declared points (e.g. `{as_python(unevaluated[0])}`)", len(recorded),
                             violated, cases)
    if violated:
        return RangeAnalysis("partitioned", f"{checked}; {len(violated)} false somewhere: the export is compared "
                             f"with PyTorch at each of those {len(cases)} declared point(s)", len(recorded),
                             violated, cases)
    return RangeAnalysis("proved", checked + (f"; size 1 checked at {len(cases)} point(s)" if cases else ""),
                         len(recorded), [], cases)


def _same_line_site(recorded, expr) -> Site | None:
    """A replacement records no line; the guard that made it (``Eq(s0, 2)``) does."""
    return next((site for other, site in recorded if site is not None and other.free_symbols & expr.free_symbols
                 and isinstance(other, sympy.Eq)), None)


def _size_one_points(recipe, example_case: ShapeCase) -> list[dict]:
    """torch.export assumes each dynamic size is >= 2: a declared 1 is checked by running it."""
    return [{n: 1} for n, d in recipe.dims.items() if not d.is_static and 1 in d.allowed()
            and example_case.values[n] != 1]


def _check_cases(points: list[dict], example_case: ShapeCase) -> list[ShapeCase]:
    """Each point, the other symbols at the example's values (where every other guard holds)."""
    unique: dict[tuple, ShapeCase] = {}
    for point in points:
        case = ShapeCase("guard", {**example_case.values, **point})
        if case.values != example_case.values:
            unique.setdefault(case.key(), case)
    return list(itertools.islice(unique.values(), MAX_CHECK_POINTS + 1))
