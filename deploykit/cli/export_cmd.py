"""deploykit export: recipes (or your own module, from flags) -> checked, simplified, dynamic ONNX artifacts."""

from __future__ import annotations

import click

from ..errors import DeployKitError, RecipeErrors
from ..export.guards import ANALYSIS_BUDGET_S
from ..reference import DEFAULT_BOUND_MB
from ..export import EXPORTER_CHOICES, ExportOptions, export_onnx
from ..structure import CALLS
from .common import (checkpoint_option, console, echo_json, force_option, forward_timeout_option, json_option,
                     module_option, out_option, recipe_file_option, recipe_names_argument, recipes_option,
                     select_recipes)


@click.command("export")
@recipe_names_argument("Export every recipe.")
@module_option("Your own module: any importable callable returning an nn.Module (the current directory is "
               "importable), exported with its weights exactly as returned. With --input/--dim, or --recipe.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=D,D,...",
              help="An input of --module, in forward() order: ints are fixed sizes, symbols are dynamic "
                   "(x=B,3,H,W). Repeat for several inputs.")
@click.option("--dim", "dims", multiple=True, metavar="SYM=MIN:OPT:MAX[/STEP]",
              help="The range of a symbol of --input, e.g. B=1:2:8 or H=64:224:512/32 (multiples of 32); "
                   "SYM=N fixes it. One per symbol.")
@click.option("--args", "args_json", default=None, metavar="JSON",
              help="Keyword arguments for --module's factory as a JSON object (null included), e.g. "
                   "'{\"num_classes\": 10, \"weights\": null}'.")
@click.option("--name", default=None, help="Artifact name for --module (default: the factory's name).")
@click.option("--call", type=click.Choice(CALLS), default="args", show_default=True,
              help="--module's forward takes the inputs as arguments, as one list, or as keyword arguments "
                   "named as the inputs.")
@recipe_file_option("A hand-written recipe TOML (it names its own factory; it wins over --input/--dim).")
@checkpoint_option("A state_dict to load (strict) into the module before export.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the recipe's, 17).")
@click.option("--exporter", type=click.Choice(EXPORTER_CHOICES), default="auto", show_default=True,
              help="auto tries TorchScript then dynamo; every result is checked either way.")
@out_option
@click.option("--no-simplify", is_flag=True, help="Keep the raw exported graph.")
@click.option("--static", is_flag=True, help="Fix every axis at the export (opt) shape.")
@click.option("--no-rewrites", is_flag=True, help="Export the module as written (unsafe modules are then refused).")
@click.option("--no-optimize", is_flag=True,
              help="Skip the exact onnxruntime graph optimizations (shape-arithmetic folding, CSE) after simplify.")
@force_option()
@click.option("--analysis-budget", type=click.FloatRange(min=0), default=ANALYSIS_BUDGET_S, show_default=True,
              metavar="SECONDS", help="Time torch.export may take to prove the declared range (0: no limit); past "
                                      "it the range is recorded as sampled, not proved, and every declared value "
                                      "of each axis is checked instead.")
@click.option("--reference-mb", type=click.FloatRange(min=0), default=DEFAULT_BOUND_MB, show_default=True,
              metavar="MB", help="Size bound of PyTorch's outputs stored in the artifact (reference.npz: the inputs, "
                                 "FP32 and float64 outputs at verify's shapes), so later checks need no code; "
                                 "shapes past it are left out and listed (0: store none).")
@forward_timeout_option
@recipes_option
@json_option
def command(names, all_, module, inputs, dims, args_json, name, call, recipe_path, checkpoint, opset, exporter,
            out_dir, no_simplify, static, no_rewrites, no_optimize, force, analysis_budget, reference_mb, recipe_dir,
            as_json):
    """Export to ONNX with dynamic axes, check it, simplify it, write the artifact.

    \b
    A model is written only if it passes: every shape guard of the module true
    over the whole declared range (or the ONNX checked where one is false), no
    specialisation of the trace to its example shape or data, onnx.checker,
    every declared dynamic axis symbolic, and parity with PyTorch at the opt and
    an off-grid shape. Otherwise the command
    refuses in one line, says why, and writes nothing (details in export.log).

    \b
    Writes OUT/NAME/: model.onnx, weights.pt (the exact weights exported),
    reference.npz (PyTorch's outputs at verify's shapes), recipe.toml,
    manifest.json, export.log. Later commands need only NAME, and no code.

    \b
    Examples:
      deploykit export cbam --opset 17
      deploykit export --all --out artifacts/
      deploykit export --module mynet:build --input x=B,3,H,W --dim B=1:2:8 \\
          --dim H=64:224:512/32 --dim W=64:224:512/32
      deploykit export --module timm.models:convnext_atto --args '{"pretrained": false}' \\
          --input x=B,3,H,W --dim B=1:1:4 --dim H=64:128:256/32 --dim W=64:128:256/32
      deploykit export --recipe my_block.toml --checkpoint block.pt
    """
    recipes = _recipes(names, all_, module, inputs, dims, args_json, name, call, recipe_path, recipe_dir, out_dir)
    if checkpoint is not None and len(recipes) != 1:
        raise DeployKitError("--checkpoint needs exactly one recipe")
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    options = ExportOptions(opset=opset, exporter=exporter, simplify=not no_simplify, static=static,
                            rewrites=not no_rewrites, optimize=not no_optimize, force=force, checkpoint=checkpoint,
                            analysis_budget=analysis_budget or None, reference_mb=reference_mb)

    results, failures = [], RecipeErrors(len(recipes))
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), console=console(stderr=True), transient=True, disable=as_json)
    with progress:
        task = progress.add_task("export", total=len(recipes))
        for recipe, model in recipes:
            def on_step(message, name=recipe.name):
                progress.update(task, description=f"{name}: {message}")

            # each recipe checks the options against itself (the opset), so one that cannot take them is one failure
            result = failures.attempt(recipe.name, lambda: export_onnx(recipe, out_dir, options, model=model,
                                                                       on_step=on_step))
            if result is not None:
                results.append(result.summary())
            progress.advance(task)
    if as_json:
        echo_json({"exported": results, "failed": failures})
    else:
        _print_table(results, failures)
    if failures:
        raise SystemExit(1)


def _recipes(names, all_, module, inputs, dims, args_json, name, call, recipe_path, recipe_dir, out_dir):
    """(recipe, module or None) pairs: zoo names / --all, a hand-written --recipe, or --module with --input/--dim
    (a recipe made from the flags, and the module its factory returned, called once)."""
    flags = inputs or dims or args_json or name
    if recipe_path is not None:
        if flags:
            raise DeployKitError("--recipe already says the inputs, dims and arguments: drop --input/--dim/--args/--name")
        return [(r, None) for r in select_recipes(names, all_, recipe_dir, module, recipe_path)]
    if module is None:
        if flags:
            raise DeployKitError("--input/--dim/--args/--name describe your own module: add --module PKG.MOD:FACTORY")
        return [(r, None) for r in select_recipes(names, all_, recipe_dir)]
    if names or all_:
        raise DeployKitError("give either recipe names/--all or --module, not both")
    if not inputs:
        raise DeployKitError("--module needs its inputs: --input x=B,3,H,W (and a --dim per symbol), or --recipe")
    from ..recipe.from_module import recipe_from_flags

    return [recipe_from_flags(module, list(inputs), list(dims), args_json, name, out_dir, call)]


def _print_table(results, failures):
    from rich.table import Table

    out = console()
    table = Table(title="deploykit export")
    for col in ("name", "exporter", "opset", "rewrites", "nodes raw -> final", "simplifier kept", "s"):
        table.add_column(col)
    for r in results:
        n = r["nodes"]
        opset = f"{r['opset']}" + (" (!)" if r["opset_note"] else "")
        kept = next((a for a in r.get("simplifier_attempts", []) if a.get("kept")), None)
        why = f" ({kept['reason']})" if kept and len(results) == 1 else ""
        table.add_row(r["name"], r["exporter"], opset, str(len(r["rewrites"])), f"{n['raw']} -> {n.get('final', '-')}",
                      f"{r['simplifier']}{why}", f"{r['seconds']:.1f}")
    out.print(table)
    for r in results:
        if r["opset_note"]:
            out.print(f"[yellow]{r['name']}: {r['opset_note']}[/yellow]")
        if len(results) == 1:
            for attempt in r.get("simplifier_attempts", []):
                if not attempt.get("kept"):
                    out.print(f"{attempt['simplifier']} not kept: {attempt.get('reason', '')}", highlight=False)
            analysed = (r.get("specialisation") or {}).get("range")
            if analysed:
                colour = "yellow" if analysed["status"] == "sampled" else "default"
                out.print(f"[{colour}]range {analysed['status']}: {analysed['detail']}[/{colour}]", highlight=False)
            warned = (r.get("specialisation") or {}).get("tracer_warnings")
            if warned:
                out.print(f"tracer warnings checked, none changes the graph: {'; '.join(warned[:3])}", highlight=False)
            out.print(f"{r['weights']}", highlight=False)
            stored = r.get("reference") or {}
            kept = (f", reference.npz: PyTorch at {len(stored.get('cases', []))} shapes, "
                    f"{stored.get('bytes', 0) / 2**20:.1f} MB" if stored.get("file") else "")
            left = stored.get("left_out") or []
            out.print(f"wrote {r['path']} (+ weights.pt{kept}, recipe.toml, manifest.json, export.log)", highlight=False)
            if left:
                out.print(f"[yellow]not stored (past --reference-mb): {', '.join(c['label'] for c in left)}; later "
                          "checks there need the module[/yellow]", highlight=False)
            out.print(f"next: deploykit verify {r['name']}", highlight=False)
    for f in failures:
        out.print(f"[red]refused {f['name']}: {f['error']}[/red]")
