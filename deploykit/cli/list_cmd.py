"""deploykit list: the recipes, their inputs, dynamic and static axes, and parameter counts."""

from __future__ import annotations

import click

from ..recipe import load_all
from .common import console, echo_json, json_option, recipes_option, resolve_recipe_dir


def describe(recipe) -> dict:
    model = recipe.build()
    return {
        "name": recipe.name,
        "module": recipe.module or recipe.factory,
        "summary": recipe.summary,
        "inputs": {t.name: t.dim_names() for t in recipe.inputs},
        "outputs": {t.name: t.dim_names() for t in recipe.outputs},
        "dynamic_axes": {n: [d.min, d.opt, d.max, d.multiple_of] for n, d in recipe.dims.items() if not d.is_static},
        "static_axes": {n: {"value": d.value, "reason": d.reason} for n, d in recipe.dims.items() if d.is_static},
        "parameters": sum(p.numel() for p in model.parameters()),
        "opset": recipe.opset,
    }


@click.command("list")
@recipes_option
@json_option
def command(recipe_dir, as_json):
    """List the recipes: inputs with symbolic dims, dynamic axes (min/opt/max), static axes and why.

    \b
    Examples:
      deploykit list
      deploykit list --json | jq '.[].name'
    """
    rows = [describe(r) for r in load_all(resolve_recipe_dir(recipe_dir))]
    if as_json:
        echo_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"deploykit recipes ({len(rows)})", show_lines=False)
    for col in ("name", "inputs", "dynamic axes (min/opt/max)", "static axes", "params"):
        table.add_column(col, overflow="fold")
    for row in rows:
        inputs = "\n".join(f"{n} [{', '.join(map(str, dims))}]" for n, dims in row["inputs"].items())
        dynamic = "\n".join(f"{n}: {lo}/{opt}/{hi}" + (f" (x{m})" if m > 1 else "")
                            for n, (lo, opt, hi, m) in row["dynamic_axes"].items())
        static = "\n".join(f"{n}={s['value']}: {s['reason']}" for n, s in row["static_axes"].items()) or "-"
        table.add_row(row["name"], inputs, dynamic, static, f"{row['parameters']:,}")
    console().print(table)
