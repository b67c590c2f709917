"""The TensorRT optimization profile: min/opt/max per input, derived from the recipe's dims.

Each profile shape is the recipe's input shapes at the min, opt and max case, so related inputs
(FPN/ASFF levels ``4*H``/``2*H``/``H``) stay consistent in every profile shape by construction.
``validate_profile`` checks a profile (derived, edited, or read back from a sidecar) against the
recipe: ranks, min <= opt <= max, static axes, divisibility, and the relations between inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..tensors.shapes import ShapeCase
from .problems import Problem

LABELS = ("min", "opt", "max")


@dataclass(frozen=True)
class InputProfile:
    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def shape(self, label: str) -> tuple[int, ...]:
        return getattr(self, label)

    def contains(self, shape) -> bool:
        shape = tuple(shape)
        return len(shape) == len(self.min) and all(lo <= s <= hi for s, lo, hi in zip(shape, self.min, self.max))


@dataclass(frozen=True)
class Profile:
    inputs: dict[str, InputProfile]

    def as_dict(self) -> dict:
        return {n: {label: list(p.shape(label)) for label in LABELS} for n, p in self.inputs.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Profile:
        return cls({n: InputProfile(n, *(tuple(int(v) for v in shapes[label]) for label in LABELS))
                    for n, shapes in data.items()})

    def describe(self) -> str:
        return "; ".join(f"{n} {'/'.join('x'.join(map(str, p.shape(label))) for label in LABELS)}"
                         for n, p in self.inputs.items())


def profile_from_recipe(recipe) -> Profile:
    """min/opt/max of every input from the recipe's min/opt/max cases (static dims keep their value)."""
    shapes = {label: recipe.input_shapes(recipe.case(label)) for label in LABELS}
    return Profile({t.name: InputProfile(t.name, *(shapes[label][t.name] for label in LABELS)) for t in recipe.inputs})


def validate_profile(profile: Profile, recipe) -> list[Problem]:
    """Every way ``profile`` disagrees with what ``recipe`` allows, one Problem each."""
    problems: list[Problem] = []
    declared = {t.name: t for t in recipe.inputs}
    for name in profile.inputs:
        if name not in declared:
            problems.append(Problem(f"profile input {name}", "profile", "the recipe declares no such input",
                                    f"use the recipe's inputs ({', '.join(declared)})"))
    # symbol -> label -> (value implied, where it came from): every axis using a symbol must agree.
    implied: dict[str, dict[str, tuple[Fraction, str]]] = {}
    for spec in recipe.inputs:
        p = profile.inputs.get(spec.name)
        if p is None:
            problems.append(Problem(f"input {spec.name}", "profile", "has no optimization profile",
                                    "derive the profile from the recipe (profile_from_recipe)"))
            continue
        if not len(p.min) == len(p.opt) == len(p.max) == len(spec.shape):
            problems.append(Problem(f"input {spec.name}", "profile",
                                    f"profile ranks {len(p.min)}/{len(p.opt)}/{len(p.max)} != the recipe's rank {len(spec.shape)}",
                                    "give min/opt/max shapes with one value per axis"))
            continue
        for axis, dim in enumerate(spec.shape):
            problems += _check_axis(spec.name, axis, dim, p, recipe, implied)
    return problems


def _check_axis(name, axis, dim, p: InputProfile, recipe, implied) -> list[Problem]:
    where = f"input {name} axis {axis}"
    values = {label: p.shape(label)[axis] for label in LABELS}
    if not values["min"] <= values["opt"] <= values["max"]:
        return [Problem(where, "profile", f"min {values['min']} <= opt {values['opt']} <= max {values['max']} does not hold",
                        "order the profile so min <= opt <= max on every axis")]
    if isinstance(dim, int) or recipe.dims[dim.symbol].is_static:
        fixed = dim if isinstance(dim, int) else dim.evaluate({dim.symbol: recipe.dims[dim.symbol].value})
        if set(values.values()) != {fixed}:
            return [Problem(where, "profile", f"static axis ({fixed}) has min/opt/max {values['min']}/{values['opt']}/{values['max']}",
                            f"use {fixed} in every profile shape (the recipe fixes this axis)")]
        return []
    spec = recipe.dims[dim.symbol]
    problems = []
    for label, v in values.items():
        symbol_value = Fraction(v) / dim.scale
        if symbol_value.denominator != 1:
            problems.append(Problem(where, "profile", f"{label} {v} is not a whole multiple for {dim.text}",
                                    f"use a value divisible by {dim.scale}"))
            continue
        s = int(symbol_value)
        if s % spec.multiple_of:
            problems.append(Problem(where, "profile", f"{label} {v} gives {dim.symbol}={s}, not a multiple of {spec.multiple_of}",
                                    f"use {dim.symbol} values that are multiples of {spec.multiple_of} (dims.{dim.symbol}.multiple_of)"))
        if not spec.min <= s <= spec.max:
            problems.append(Problem(where, "profile", f"{label} {v} gives {dim.symbol}={s}, outside [{spec.min}, {spec.max}]",
                                    f"keep {dim.symbol} within the recipe's range"))
        seen = implied.setdefault(dim.symbol, {})
        if label in seen and seen[label][0] != symbol_value:
            other_value, other_where = seen[label]
            problems.append(Problem(where, "profile",
                                    f"{label} {v} ({dim.text}) implies {dim.symbol}={s}, but {other_where} implies "
                                    f"{dim.symbol}={other_value}",
                                    "derive every related input from the same symbol values (e.g. 4*H, 2*H, H)"))
        else:
            seen.setdefault(label, (symbol_value, f"{where} ({dim.text})"))
    return problems


def split_cases(cases: list[ShapeCase], recipe, profile: Profile) -> tuple[list[ShapeCase], list[ShapeCase]]:
    """(cases inside the profile, cases outside it): an engine only runs the shapes its profile covers."""
    inside, outside = [], []
    for case in cases:
        shapes = recipe.input_shapes(case)
        ok = all(name in profile.inputs and profile.inputs[name].contains(shape) for name, shape in shapes.items())
        (inside if ok else outside).append(case)
    return inside, outside
