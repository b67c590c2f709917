"""deploykit export: recipes -> checked, simplified, dynamic ONNX artifacts."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import DeployKitError
from ..export import EXPORTER_CHOICES, export_onnx
from .common import select_recipes, console, echo_json, json_option, out_option, recipes_option


@click.command("export")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Export every recipe.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the recipe's, 17).")
@click.option("--exporter", type=click.Choice(EXPORTER_CHOICES), default="auto", show_default=True,
              help="auto tries TorchScript then dynamo; every result is checked either way.")
@out_option
@click.option("--no-simplify", is_flag=True, help="Keep the raw exported graph.")
@click.option("--static", is_flag=True, help="Fix every axis at the export (opt) shape.")
@click.option("--no-rewrites", is_flag=True, help="Export the module as written (unsafe modules are then refused).")
@click.option("--no-optimize", is_flag=True,
              help="Skip the exact onnxruntime graph optimizations (shape-arithmetic folding, CSE) after simplify.")
@click.option("--force", is_flag=True, help="Overwrite files deploykit did not write (or that changed since).")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A state_dict to load (strict) instead of seeded weights.")
@click.option("--module", "module", default=None, help="Your own module: package.module:factory (with --recipe).")
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The recipe TOML for --module.")
@recipes_option
@json_option
def command(names, all_, opset, exporter, out_dir, no_simplify, static, no_rewrites, no_optimize, force, checkpoint,
            module, recipe_path, recipe_dir, as_json):
    """Export recipes to ONNX with dynamic axes, check them, simplify them, write a manifest.

    \b
    A model is written only if it passes: onnx.checker, every declared dynamic
    axis symbolic, and parity with PyTorch at the opt and an off-grid shape.
    Otherwise the command refuses, says why, and writes nothing.

    \b
    Examples:
      deploykit export cbam --opset 17
      deploykit export --all --out artifacts/
      deploykit export --module mypkg.nets:make_block --recipe my_block.toml
    """
    recipes = select_recipes(names, all_, recipe_dir, module, recipe_path)
    if checkpoint is not None and len(recipes) != 1:
        raise DeployKitError("--checkpoint needs exactly one recipe")
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    results, failures = [], []
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), console=console(stderr=True), transient=True, disable=as_json)
    with progress:
        task = progress.add_task("export", total=len(recipes))
        for recipe in recipes:
            def on_step(message, name=recipe.name):
                progress.update(task, description=f"{name}: {message}")

            try:
                result = export_onnx(recipe, out_dir, opset=opset, exporter=exporter, simplify=not no_simplify,
                                     static=static, rewrites=not no_rewrites, optimize=not no_optimize, force=force,
                                     checkpoint=checkpoint,
                                     on_step=on_step)
                results.append(result.summary())
            except DeployKitError as exc:
                if len(recipes) == 1:
                    raise
                failures.append({"name": recipe.name, "error": str(exc)})
            progress.advance(task)
    if as_json:
        echo_json({"exported": results, "failed": failures})
    else:
        _print_table(results, failures)
    if failures:
        raise SystemExit(1)


def _print_table(results, failures):
    from rich.table import Table

    out = console()
    table = Table(title="deploykit export")
    for col in ("name", "exporter", "opset", "rewrites", "nodes raw/onnxsim/onnxslim", "kept", "s"):
        table.add_column(col)
    for r in results:
        n = r["nodes"]
        opset = f"{r['opset']}" + (" (!)" if r["opset_note"] else "")
        table.add_row(r["name"], r["exporter"], opset, str(len(r["rewrites"])),
                      f"{n['raw']}/{n.get('onnxsim', '-')}/{n.get('onnxslim', '-')}", r["simplifier"], f"{r['seconds']:.1f}")
    out.print(table)
    for r in results:
        if r["opset_note"]:
            out.print(f"[yellow]{r['name']}: {r['opset_note']}[/yellow]")
        if len(results) == 1:
            out.print(f"wrote {r['path']} (+ manifest.json, weights.pt)")
    for f in failures:
        out.print(f"[red]refused {f['name']}: {f['error']}[/red]")
