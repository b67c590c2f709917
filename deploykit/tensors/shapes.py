"""Symbolic dims and the shape sweep.

A recipe's shapes mix ints (static axes) with symbols or simple expressions of one symbol
(``"H"``, ``"2*H"``, ``"H/2"``), so related inputs (FPN/ASFF levels) stay consistent at every shape.
The sweep picks deterministic min/opt/max cases plus seeded off-grid ones (H != W, odd sizes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

_EXPR = re.compile(r"^\s*(?:(\d+)\s*\*\s*)?([A-Za-z_]\w*)\s*(?:\*\s*(\d+)|/\s*(\d+))?\s*$")


@dataclass(frozen=True)
class DimExpr:
    """``scale * symbol``; scale is a Fraction so ``H/2`` is exact or an error, never rounded."""

    symbol: str
    scale: Fraction
    text: str

    def evaluate(self, values: dict[str, int]) -> int:
        value = self.scale * values[self.symbol]
        if value.denominator != 1:
            raise ValueError(f"{self.text} is not a whole number at {self.symbol}={values[self.symbol]}")
        return int(value)


def parse_dim(item) -> int | DimExpr | None:
    """An int stays a static size; a string is parsed as ``[k*]SYM[*k|/k]``; ``"?"`` is a dynamic axis
    with no such relation to the symbols (None: only outputs may have one)."""
    if item == "?":
        return None
    if isinstance(item, bool):
        raise ValueError(f"{item!r} is not a dim (use an int or a symbol such as \"H\" or \"2*H\")")
    if isinstance(item, int):
        if item < 1:
            raise ValueError(f"static size {item} must be >= 1")
        return item
    if not isinstance(item, str):
        raise ValueError(f"{item!r} is not a dim (use an int or a symbol such as \"H\" or \"2*H\")")
    match = _EXPR.match(item)
    if not match:
        raise ValueError(f"{item!r} is not a dim expression (allowed: \"H\", \"2*H\", \"H*2\", \"H/2\")")
    pre, symbol, post_mul, post_div = match.groups()
    if post_div is not None and int(post_div) == 0:
        raise ValueError(f"{item!r} divides by zero")
    scale = Fraction(int(pre or 1)) * int(post_mul or 1) / int(post_div or 1)
    if scale <= 0:
        raise ValueError(f"{item!r} must scale its symbol by a positive number")
    return DimExpr(symbol, scale, item.replace(" ", ""))


def resolve_shape(shape: tuple, values: dict[str, int]) -> tuple[int, ...]:
    if any(d is None for d in shape):
        raise ValueError(f"shape {shape} has an axis ('?') that no symbol determines")
    return tuple(d if isinstance(d, int) else d.evaluate(values) for d in shape)


@dataclass(frozen=True)
class ShapeCase:
    """One point of the sweep: a label and a value for every symbol."""

    label: str
    values: dict[str, int]

    def key(self) -> tuple:
        return tuple(sorted(self.values.items()))

    def describe(self) -> str:
        return describe_values(self.values)


def describe_values(values: dict[str, int]) -> str:
    """``{"B": 2, "H": 37}`` -> ``"B=2 H=37"``: how deploykit names a shape in every message."""
    return " ".join(f"{k}={v}" for k, v in values.items())


def allowed_values(lo: int, hi: int, multiple_of: int) -> range:
    """Every value a dim may take, as a range (O(1) length and membership, however wide the dim is)."""
    first = -(-lo // multiple_of) * multiple_of
    return range(first, hi + 1, multiple_of)


_LISTED = 4096  # grids up to this size are searched in full; wider ones are sampled (same seed, same picks)


def _pick_off_grid(rng, candidates: range, avoid: set[int]) -> int:
    # Prefer odd sizes (they catch floor/ceil mistakes), then anything not already swept.
    if len(candidates) > _LISTED:
        for accept in (lambda v: v % 2 and v not in avoid, lambda v: v not in avoid):
            for _ in range(64):
                value = candidates[int(rng.integers(len(candidates)))]
                if accept(value):
                    return value
        return candidates[0]
    for pool in ([v for v in candidates if v % 2 and v not in avoid], [v for v in candidates if v not in avoid]):
        if pool:
            return int(rng.choice(pool))
    return int(rng.choice(candidates))


def sweep(dims: dict, *, seed: int = 0, off_grid: int = 2, edges: bool = False, samples: int = 0) -> list[ShapeCase]:
    """min, opt, max, then ``off_grid`` seeded cases; duplicates dropped, order stable.

    ``dims`` maps symbol -> DimSpec (see recipe.py). Static symbols keep their value everywhere.
    Off-grid cases give each dynamic symbol a different value where the ranges allow (so H != W),
    alternating batch-like symbols between their min and a larger value. ``edges`` adds the grid's
    second and second-to-last values (min + step, max - step: off-by-one bins and paddings), and
    ``samples`` that many more seeded in-range shapes.
    """
    static = {n: d.value for n, d in dims.items() if d.is_static}
    dynamic = {n: d for n, d in dims.items() if not d.is_static}
    cases = [
        ShapeCase(label, {**static, **{n: getattr(d, label) for n, d in dynamic.items()}})
        for label in ("min", "opt", "max")
    ]
    rng = np.random.default_rng(seed)
    for i in range(off_grid):
        values = dict(static)
        used: set[int] = set()
        for name, d in dynamic.items():
            grid = allowed_values(d.min, d.max, d.multiple_of)
            avoid = {d.min, d.opt, d.max} | used
            values[name] = _pick_off_grid(rng, grid, avoid)
            used.add(values[name])
        cases.append(ShapeCase(f"off-grid-{i + 1}", values))
    if edges:
        for label, index in (("edge-low", 1), ("edge-high", -2)):
            values = dict(static)
            for name, d in dynamic.items():
                grid = allowed_values(d.min, d.max, d.multiple_of)
                values[name] = grid[index] if len(grid) > 2 else grid[0 if index == 1 else -1]
            cases.append(ShapeCase(label, values))
    sampler = np.random.default_rng([seed, 7919])  # its own stream: samples do not move the off-grid cases
    for i in range(samples):
        values = dict(static)
        for name, d in dynamic.items():
            values[name] = int(sampler.choice(allowed_values(d.min, d.max, d.multiple_of)))
        cases.append(ShapeCase(f"sample-{i + 1}", values))
    unique: dict[tuple, ShapeCase] = {}
    for case in cases:
        unique.setdefault(case.key(), case)
    return list(unique.values())


def parse_shape_option(text: str, symbols: list[str]) -> dict[str, int]:
    """``--shape B=2,H=37,W=53`` -> {"B": 2, "H": 37, "W": 53}."""
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        if not sep or not raw.strip().isdigit():
            raise ValueError(f"--shape {text!r}: expected SYMBOL=INT pairs such as B=2,H=37,W=53")
        if name.strip() not in symbols:
            raise ValueError(f"--shape {text!r}: unknown symbol {name.strip()!r} (symbols: {', '.join(symbols)})")
        values[name.strip()] = int(raw)
    return values
