"""Which shapes to time: the recipe's opt shape by default, or ``--shape`` / ``--batch`` values.

``--shape B=4,H=64`` names some symbols (the others keep their opt value); ``--batch 1,2,8`` sets the
batch axis (``Recipe.batch_symbol``: the dynamic symbol on axis 0 of every input). Given both, every
shape is timed at every batch. Every case is checked against the recipe's ranges before anything runs.
"""

from __future__ import annotations

from ..errors import DeployKitError
from ..tensors.shapes import ShapeCase, parse_shape_option


def parse_batches(text: str | None) -> list[int]:
    """``"1,2,8"`` -> [1, 2, 8]."""
    if not text:
        return []
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise DeployKitError(f"--batch {text!r}: expected positive integers separated by commas, such as 1,2,8")
        values.append(int(part))
    return values


def _label(values: dict[str, int], opt: dict[str, int]) -> str:
    changed = {k: v for k, v in values.items() if v != opt[k]}
    return "opt" if not changed else " ".join(f"{k}={v}" for k, v in values.items())


def bench_cases(recipe, shapes: list[str] = (), batches: list[int] = ()) -> list[ShapeCase]:
    """The cases to time, in the order given, checked against the recipe (one-line errors)."""
    opt = recipe.case("opt").values
    points = []
    for text in shapes or [""]:
        try:
            given = parse_shape_option(text, list(recipe.dims)) if text else {}
        except ValueError as exc:
            raise DeployKitError(f"{recipe.name}: {exc}") from None
        points.append({**opt, **given})
    if batches:
        symbol = recipe.batch_symbol
        if symbol is None:
            raise DeployKitError(f"--batch: {recipe.name} has no dynamic batch axis (no dynamic symbol on axis 0 of "
                                 f"every input; its first input starts with {recipe.inputs[0].dim_names()[0]!r})")
        points = [{**p, symbol: b} for p in points for b in batches]
    cases, seen = [], set()
    for values in points:
        case = ShapeCase(_label(values, opt), values)
        if case.key() in seen:
            continue
        seen.add(case.key())
        recipe.check_case(case)  # RecipeError (a DeployKitError) names the symbol and the allowed range
        cases.append(case)
    return cases


def items_per_call(recipe, case: ShapeCase) -> int:
    """How many items one call processes: the size of the first input's first axis (the batch)."""
    return next(iter(recipe.input_shapes(case).values()))[0]
