"""deploykit list: the recipes, their inputs, dynamic and static axes, and parameter counts."""

from __future__ import annotations

import click

from ..errors import DeployKitError
from ..recipe import load_recipe, recipe_names
from .common import console, echo_json, json_option, recipes_option, resolve_recipe_dir


def describe(recipe) -> dict:
    try:
        model = recipe.build()
    except DeployKitError as exc:  # one recipe whose module cannot be built does not hide the others
        return {"name": recipe.name, "module": recipe.module or recipe.factory, "error": str(exc)}
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
    folder = resolve_recipe_dir(recipe_dir)
    rows = []
    for name in recipe_names(folder):
        try:
            rows.append(describe(load_recipe(folder / f"{name}.toml")))
        except DeployKitError as exc:  # an invalid recipe is listed with its one-line reason
            rows.append({"name": name, "error": str(exc)})
    failed = any("error" in row for row in rows)
    if as_json:
        echo_json(rows)
        raise SystemExit(1 if failed else 0)
    from rich.table import Table

    table = Table(title=f"deploykit recipes ({len(rows)})", show_lines=False)
    for col in ("name", "inputs", "dynamic axes (min/opt/max)", "static axes", "params"):
        table.add_column(col, overflow="fold")
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], f"[red]{row['error']}[/red]", "-", "-", "-")
            continue
        inputs = "\n".join(f"{n} [{', '.join(map(str, dims))}]" for n, dims in row["inputs"].items())
        dynamic = "\n".join(f"{n}: {lo}/{opt}/{hi}" + (f" (x{m})" if m > 1 else "")
                            for n, (lo, opt, hi, m) in row["dynamic_axes"].items())
        static = "\n".join(f"{n}={s['value']}: {s['reason']}" for n, s in row["static_axes"].items()) or "-"
        table.add_row(row["name"], inputs, dynamic, static, f"{row['parameters']:,}")
    console().print(table)
    if failed:
        raise SystemExit(1)
