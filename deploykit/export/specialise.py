"""Does an export depend on the example it was traced at? Decided deterministically, never by the sweep.

A tracer records only the branch of Python control flow taken at its example input and turns
``int(t)``, ``float(t)``, ``t.item()`` and ``bool(t)`` into constants. Whether the result is right on
other inputs is not something a few sampled shapes can tell. So, for the TorchScript exporter:

1. the module is traced again at a shape that differs from the example in every symbol (another
   parity and residue mod 3): a different graph (a loop unrolled over ``range(x.size(-1))``, which
   raises no warning) is refused with the user's line where the graphs part. Then its
   ``TracerWarning``\\ s are collected with their file and line: none, and nothing was converted to a
   Python value. Most exports stop here, at the cost of two traces.
2. With warnings, torch.export traces the same module symbolically over the recipe's declared range
   (non-strict, the recipe's dims): a shape condition becomes a guard, and a guard that does not hold
   for every declared value is a ConstraintViolation; a branch on data is a data-dependent guard. Both
   are refused with the user's line. This covers the whole declared range, not a sample of it.
3. The trace is redone with other data at the same shape (and, when the symbolic check could not
   run, at shapes that differ in every symbol's parity and residues, and at the max): a graph that
   changes with data (``.item()`` baked as a constant) or shape is refused. Identical graphs mean
   the warnings changed nothing: real networks that warn harmlessly are not blocked.

The dynamo exporter traces symbolically itself but, measured here, turns a violated guard into a
silently narrowed range or an unconditional branch; so step 2 runs before every dynamo export too.
"""

from __future__ import annotations

import linecache
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ExportRefused, at_declared_shape, first_line
from ..recipe.shapes import ShapeCase

ADVICE = {
    "shape": "make the code shape-independent (tensor ops such as torch.where, a padding that is always applied), "
             "declare the axis static in the recipe, or move the branch out of forward",
    "data": "use tensor ops on data (torch.where instead of Python control flow, no .item()/float()/int() of "
            "tensors in forward), or move the computation out of forward",
}


@dataclass(frozen=True)
class Site:
    """One place the tracer warned about: the user's file and line, and what was converted."""

    file: str
    line: int
    message: str

    @property
    def source(self) -> str:
        return linecache.getline(self.file, self.line).strip()

    def describe(self) -> str:
        code = f" `{self.source}`" if self.source else ""
        what = re.search(r"Converting a tensor to a Python (\w+)", self.message)
        return f"{self.file}:{self.line}{code}" + (f" (a tensor converted to a Python {what.group(1)})" if what else "")


def tracer_sites(records) -> list[Site]:
    """The TracerWarnings among ``warnings`` records, one Site per file:line."""
    sites: dict[tuple, Site] = {}
    for record in records:
        if type(record.message).__name__ == "TracerWarning":
            sites.setdefault((record.filename, record.lineno),
                             Site(record.filename, record.lineno, str(record.message).splitlines()[0]))
    return list(sites.values())


@dataclass
class SpecialisationCheck:
    """What was checked, for the manifest."""

    sites: list[Site] = field(default_factory=list)
    symbolic: str = "not needed: the tracer converted no tensor to a Python value"
    traces: list[str] = field(default_factory=list)  # the variants whose graphs matched the example's

    def as_dict(self) -> dict:
        return {"tracer_warnings": [s.describe() for s in self.sites], "symbolic": self.symbolic,
                "traces_compared": self.traces}


def _refuse(kind: str, what: str, sites: list[Site], detail: str = "") -> None:
    label = {"shape": "shape-dependent control flow or size conversion",
             "data": "a data-dependent value or branch"}[kind]
    if sites:
        where = " at " + "; ".join(s.describe() for s in sites[:3]) + (f" (+{len(sites) - 3} more)" if len(sites) > 3 else "")
    else:  # no Python conversion to point at: an operator or a layer's weights fix the size
        label, where = "the module fixes a size", " (no Python conversion in its code: e.g. a Linear over the axis)"
    raise ExportRefused(f"the trace is {what} ({label}){where}{': ' + detail if detail else ''}; "
                        f"{ADVICE[kind] if sites else 'declare the axis static in the recipe (--dim SYM=N)'}")


# -- the symbolic check ------------------------------------------------------------------------------
def symbolic_check(flat, recipe, example: list[torch.Tensor], sites: list[Site]) -> str:
    """torch.export over the recipe's declared range: refuse a violated guard or a data-dependent branch.

    Returns what it concluded ("passed" or "unavailable: why") for the manifest."""
    from ..environment import quiet
    from .exporters import dynamo_shapes

    flat.eval()
    try:
        with quiet(stderr=True), torch.no_grad():
            torch.export.export(flat, tuple(example), dynamic_shapes=dynamo_shapes(recipe), strict=False)
    except Exception as exc:  # torch.export raises UserError, GuardOnDataDependentSymNode, and many others
        text = str(exc)
        if "Constraints violated" in text or "specialized it to be a constant" in text:
            guards = [_name_axes(line.strip(" -"), recipe).split(". If you")[0]
                      for line in text.splitlines() if line.strip().startswith("- ")]
            _refuse("shape", "specialised to its example shape", sites or trace_sites(flat, example),
                    "; ".join(guards[:2]) or first_line(exc))
        if "data-dependent" in text or type(exc).__name__ in ("GuardOnDataDependentSymNode", "DataDependentOutputException"):
            from ..errors import _user_frame

            frame = _user_frame(exc.__traceback__)
            line = re.match(r" at (.*):(\d+)$", frame)
            where = [Site(line.group(1), int(line.group(2)), "")] if line else sites
            _refuse("data", "specialised to its example data", where, first_line(exc))
        return f"unavailable: torch.export could not trace the module ({type(exc).__name__}: {first_line(exc)[:200]})"
    return f"passed: torch.export found no guard narrower than the declared range ({describe_ranges(recipe)})"


def _name_axes(text: str, recipe) -> str:
    """torch.export's ``L['inputs'][0].size()[3]`` -> the recipe's name for that axis (``W``)."""
    def axis(match):
        tensor, index = recipe.inputs[int(match.group(1))], int(match.group(2))
        dim = tensor.shape[index] if index < len(tensor.shape) else None
        return getattr(dim, "text", f"{tensor.name}.shape[{index}]")

    text = re.sub(r"L\['inputs'\]\[(\d+)\]\.size\(\)\[(\d+)\]", axis, text)
    return re.sub(r"(\w+) = \1 in", r"\1 in", text).rstrip(".")


def trace_sites(flat, example: list[torch.Tensor]) -> list[Site]:
    """The tracer's warning sites for one trace (to name the user's line when only torch.export spoke)."""
    records = []
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        try:
            torch.jit.trace(flat, tuple(example), check_trace=False)
        except Exception:  # naming the line is best effort; the refusal stands without it
            pass
        records = list(caught)
    return tracer_sites(records)


def describe_ranges(recipe) -> str:
    return ", ".join(f"{n} {d.min}..{d.max}" + (f" step {d.multiple_of}" if d.multiple_of > 1 else "")
                     for n, d in recipe.dims.items() if not d.is_static)


# -- trace comparison ---------------------------------------------------------------------------------
# tensor types with their sizes and strides, wherever they appear (``%4 : (Float(2, 4, 16, 16, strides=...))``)
_TYPES = re.compile(r"\b(?:Float|Double|Half|BFloat16|Long|Int|Short|Char|Byte|Bool|ComplexFloat|ComplexDouble|Tensor)"
                    r"\([^()]*\)")
_SOURCE = re.compile(r"# (/[^:]+\.py):(\d+):\d+")


@dataclass(frozen=True)
class Trace:
    """A TorchScript trace's graph, with and without what legitimately differs between two traces of
    the same function (sizes, strides, class-name mangling, source comments)."""

    raw: list[str]
    canonical: list[str]

    def differs(self, other: "Trace") -> bool:
        return self.canonical != other.canonical

    def first_difference(self, other: "Trace") -> list["Site"]:
        """The user's source line where two traces part (from TorchScript's source comments)."""
        import difflib

        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, self.canonical, other.canonical,
                                                           autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            for line in [*self.raw[i1:i2], *other.raw[j1:j2]]:
                for file, number in _SOURCE.findall(line):
                    if _is_user_file(file):
                        return [Site(file, int(number), "")]
        return []


def _is_user_file(path: str) -> bool:
    import os
    import sysconfig

    skip = [os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)), sysconfig.get_paths()["stdlib"]]
    return not any(path.startswith(s) for s in skip)


def canonical_trace(flat, tensors: list[torch.Tensor]) -> Trace:
    """The module traced by TorchScript's tracer at ``tensors``; two traces are the same function exactly
    when their canonical graphs are equal."""
    flat.eval()  # an exporter may have left it in training mode (torch.onnx restores modes recursively)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(flat, tuple(tensors), check_trace=False)
    raw = str(traced.inlined_graph).splitlines()
    canonical = [_TYPES.sub("", re.sub(r"___torch_mangle_\d+\.", "", re.sub(r"#.*", "", line))).rstrip() for line in raw]
    return Trace(raw, canonical)


def variant_cases(recipe, example: ShapeCase) -> list[ShapeCase]:
    """Shapes that differ from the example in every dynamic symbol: another parity and residue mod 3
    where the grid allows, and the max (thresholds)."""
    near, top = dict(example.values), dict(example.values)
    for name, spec in recipe.dims.items():
        if spec.is_static:
            continue
        grid = [v for v in spec.allowed() if v != example.values[name]]
        if not grid:
            continue
        e = example.values[name]
        ranked = sorted(grid, key=lambda v: ((v - e) % 2 == 0, (v - e) % 3 == 0, abs(v - e)))
        near[name] = ranked[0]
        top[name] = spec.max if spec.max != e else ranked[0]
    cases = [ShapeCase("variant", near), ShapeCase("variant-max", top)]
    return [c for i, c in enumerate(cases) if c.values != example.values and c.values not in [d.values for d in cases[:i]]]


def _tensors(recipe, feed: dict) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(feed[t.name])) for t in recipe.inputs]


def check_trace(flat, recipe, example: ShapeCase, records, *, dynamic: bool, seed: int = 0,
                symbolic=None) -> SpecialisationCheck:
    """The TorchScript export's specialisation check (see the module docstring); ExportRefused when the
    trace depends on its example shape or data. ``symbolic``: a callable giving ``symbolic_check``'s
    verdict (the export runs it at most once, for this check and the dynamo fallback alike)."""
    result = SpecialisationCheck(tracer_sites(records))
    example_tensors = _tensors(recipe, recipe.make_inputs(example, seed))
    reference = canonical_trace(flat, example_tensors)
    variants = variant_cases(recipe, example) if dynamic else []
    if not result.sites:
        # no value was converted with a warning; some conversions raise none (range(x.size(-1)),
        # [0] * x.size(1)), so one trace at another shape, always
        for case in variants[:1]:
            _compare(flat, recipe, reference, case, example, result, seed)
        return result
    other = recipe.make_inputs(example, seed + 1)
    flipped = [-2.0 * t for t in _tensors(recipe, other)]  # other signs and scales: other branches, other values
    if canonical_trace(flat, flipped).differs(reference):
        _refuse("data", "specialised to its example data", result.sites,
                "the traced graph changes when only the input data changes")
    result.traces.append(f"other data at {example.describe()}")
    if not dynamic:
        result.symbolic = "not needed: every axis is static (--static)"
        return result
    result.symbolic = symbolic() if symbolic else symbolic_check(flat, recipe, example_tensors, result.sites)
    if not result.symbolic.startswith("passed"):  # the symbolic check could not run: trace at the variants
        for case in variants:
            _compare(flat, recipe, reference, case, example, result, seed)
    return result


def _compare(flat, recipe, reference: Trace, case: ShapeCase, example: ShapeCase, result, seed: int) -> None:
    with at_declared_shape(f"the PyTorch module at {case.describe()}"):
        trace = canonical_trace(flat, _tensors(recipe, recipe.make_inputs(case, seed)))
    if trace.differs(reference):
        _refuse("shape", "specialised to its example shape", result.sites or reference.first_difference(trace),
                f"the traced graph at {case.describe()} differs from the one at {example.describe()} "
                "(a Python value taken from a size: a loop or list over x.size(i), an if on a size)")
    result.traces.append(case.describe())
