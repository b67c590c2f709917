"""Which shapes a check covers: verify's sweep, and every declared value of each axis when export could not
prove the range (export/guards.py). Export stores PyTorch's outputs at exactly these shapes (reference.py),
so verify and export must draw them from one place."""

from __future__ import annotations

import numpy as np

from .shapes import ShapeCase

MAX_VALUES_PER_AXIS = 64  # a sampled range: verify runs this many values of each axis at most (evenly spaced)


def every_value_cases(recipe, per_axis: int = MAX_VALUES_PER_AXIS) -> tuple[list[ShapeCase], str]:
    """Every declared value of each dynamic axis, the others at opt (at most ``per_axis`` values per axis, evenly
    spaced, min and max included): what verify covers when export could not prove the range symbolically."""
    cases, notes = [], []
    opt = recipe.case("opt").values
    for name in recipe.dynamic_symbols:
        grid = recipe.dims[name].allowed()
        if len(grid) > per_axis:
            values = sorted({grid[int(i)] for i in np.linspace(0, len(grid) - 1, per_axis).round()})
            notes.append(f"{name} at {len(values)} of its {len(grid)} values")
        else:
            values = list(grid)
            notes.append(f"{name} at all {len(values)}")
        cases += [ShapeCase(f"every-{name}", {**opt, name: v}) for v in values if v != opt[name]]
    return cases, "range sampled, not proved at export: " + ", ".join(notes) + " (the others at opt)"


def verify_cases(recipe, backend: str = "ort-cpu", static_shape: dict | None = None, extra: list[dict] = (), seed: int = 0,
                 samples: int = 0, every_value: bool = False) -> list[ShapeCase]:
    """min, opt, max, two off-grid shapes, the grid's edges (min + step, max - step), ``samples`` more
    seeded shapes, and the user's ``--shape``s; with ``every_value``, every declared value of each axis."""
    if static_shape is not None:
        cases = [ShapeCase("export", dict(static_shape))]
    else:
        cases = recipe.sweep(seed=seed, edges=True, samples=samples)
        if every_value and backend != "ref":
            known = {c.key() for c in cases}
            cases += [c for c in every_value_cases(recipe)[0] if c.key() not in known]
        if backend == "ref":  # the reference evaluator is slow: a second opinion on the smallest shapes
            size = lambda c: sum(int(np.prod(s)) for s in recipe.input_shapes(c).values())  # noqa: E731
            cases = sorted(cases, key=size)[:3]
    for i, values in enumerate(extra):
        case = ShapeCase(f"user-{i + 1}", {**recipe.case("opt").values, **values})
        recipe.check_case(case)
        cases.append(case)
    return cases
