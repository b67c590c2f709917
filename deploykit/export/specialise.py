"""Does a TorchScript trace depend on its example? Decided deterministically, never by the sweep.

A tracer records only the branch of Python control flow taken at its example input and turns
``int(t)``, ``float(t)``, ``t.item()`` and ``bool(t)`` into constants. Which branch a size takes is
decided over the whole declared range by the range analysis (guards.py, torch.export's guards
evaluated at every declared point), for both exporters. What torch.export's symbolic trace does not
share with TorchScript's concrete one is checked here:

1. the module is traced again at a shape that differs from the example in every symbol (another parity
   and residue mod 3; with tracer warnings, at the max too): a different graph (``int(x.size(-1)) // 4`` baked as a constant,
   a loop unrolled over ``range(x.size(-1))``, which raises no warning) is refused with the user's
   line where the graphs part;
2. with ``TracerWarning``\\ s (collected with their file and line), the trace is redone with other
   data at the same shape: a graph that changes with data (``.item()`` baked as a constant) is refused.
   Identical graphs mean the warnings changed nothing: real networks that warn harmlessly are not blocked.
"""

from __future__ import annotations

import linecache
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ExportRefused
from ..guard import at_declared_shape
from ..tensors.shapes import ShapeCase

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
        code = f" `{cut(self.source, 120)}`" if self.source else ""
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
    traces: list[str] = field(default_factory=list)  # the variants whose graphs matched the example's
    range: dict = field(default_factory=dict)  # the range analysis (guards.py), as recorded

    def as_dict(self) -> dict:
        return {"tracer_warnings": [s.describe() for s in self.sites], "range": self.range,
                "traces_compared": self.traces}


def cut(text: str, limit: int) -> str:
    """A quoted line kept to ``limit`` characters (torchvision's ssdlite has a 4,128-character line)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def refuse(kind: str, what: str, sites: list[Site], detail: str = "") -> None:
    label = {"shape": "shape-dependent control flow or size conversion",
             "data": "a data-dependent value or branch"}[kind]
    if sites:
        where = " at " + "; ".join(s.describe() for s in sites[:3]) + (f" (+{len(sites) - 3} more)" if len(sites) > 3 else "")
    else:  # no Python conversion to point at: an operator or a layer's weights fix the size
        label, where = "the module fixes a size", " (no Python conversion in its code: e.g. a Linear over the axis)"
    raise ExportRefused(f"the trace is {what} ({label}){where}{': ' + cut(detail, 300) if detail else ''}; "
                        f"{ADVICE[kind] if sites else 'declare the axis static in the recipe (--dim SYM=N)'}")


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
                    if is_user_file(file):
                        return [Site(file, int(number), "")]
        return []


def is_user_file(path: str) -> bool:
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


def variant_cases(recipe, example: ShapeCase, analysis=None) -> list[ShapeCase]:
    """Shapes that differ from the example in every dynamic symbol: another parity and residue mod 3
    where the grid allows, and the max (thresholds). Values where a guard of the range analysis is false
    are left out: the module takes another branch there, and export compares the ONNX itself at them."""
    near, top = dict(example.values), dict(example.values)
    for name, spec in recipe.dims.items():
        if spec.is_static:
            continue
        grid = [v for v in spec.allowed() if v != example.values[name]
                and not (analysis is not None and analysis.guarded({**example.values, name: v}))]
        if not grid:
            continue
        e = example.values[name]
        ranked = sorted(grid, key=lambda v: ((v - e) % 2 == 0, (v - e) % 3 == 0, abs(v - e)))
        near[name] = ranked[0]
        top[name] = spec.max if spec.max != e else ranked[0]
    cases = [ShapeCase("variant", near), ShapeCase("variant-max", top)]
    if analysis is not None:  # two symbols moved together can meet a guard neither meets alone (H == W)
        cases = [c for c in cases if not analysis.guarded(c.values)]
    return [c for i, c in enumerate(cases) if c.values != example.values and c.values not in [d.values for d in cases[:i]]]


def _tensors(recipe, feed: dict) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(feed[t.name])) for t in recipe.inputs]


def check_trace(flat, recipe, example: ShapeCase, records, *, dynamic: bool, seed: int = 0,
                analysis=None) -> SpecialisationCheck:
    """The TorchScript export's own checks (see the module docstring); ExportRefused when the trace
    depends on its example shape or data."""
    result = SpecialisationCheck(tracer_sites(records))
    example_tensors = _tensors(recipe, recipe.make_inputs(example, seed))
    reference = canonical_trace(flat, example_tensors)
    if result.sites:
        other = recipe.make_inputs(example, seed + 1)
        flipped = [-2.0 * t for t in _tensors(recipe, other)]  # other signs and scales: other branches, other values
        if canonical_trace(flat, flipped).differs(reference):
            refuse("data", "specialised to its example data", result.sites,
                   "the traced graph changes when only the input data changes")
        result.traces.append(f"other data at {example.describe()}")
    variants = variant_cases(recipe, example, analysis) if dynamic else []
    # without a warning nothing was converted to a Python value where the tracer could see it; one other shape
    # catches what converts silently (a loop over range(x.size(-1))); thresholds are the range analysis's guards
    for case in variants if result.sites else variants[:1]:
        _compare(flat, recipe, reference, case, example, result, seed)
    return result


def _compare(flat, recipe, reference: Trace, case: ShapeCase, example: ShapeCase, result, seed: int) -> None:
    with at_declared_shape(f"the PyTorch module at {case.describe()}"):
        trace = canonical_trace(flat, _tensors(recipe, recipe.make_inputs(case, seed)))
    if trace.differs(reference):
        refuse("shape", "specialised to its example shape", result.sites or reference.first_difference(trace),
                f"the traced graph at {case.describe()} differs from the one at {example.describe()} "
                "(a Python value taken from a size: a loop or list over x.size(i), an if on a size)")
    result.traces.append(case.describe())
