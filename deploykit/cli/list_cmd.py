"""deploykit list: the recipes, their inputs, dynamic and static axes, and parameter counts."""

from __future__ import annotations

import click

from ..recipe.listing import list_recipes
from .common import console, echo_json, json_option, recipes_option


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
    listing = list_recipes(recipe_dir)
    rows = listing.rows
    if as_json:
        echo_json(rows)
        raise SystemExit(listing.exit_code)
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
    raise SystemExit(listing.exit_code)
