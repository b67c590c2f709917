"""deploykit verify: artifacts against PyTorch over the recipe's whole shape range."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ..errors import DeployKitError, RecipeErrors
from ..tensors.shapes import parse_shape_option
from ..verify import VerifyOptions, verify_artifact, verify_onnx
from .common import (backend_option, checkpoint_option, console, echo_json, force_option, forward_timeout_option,
                     json_option, module_option, out_option, precision_option, recipe_file_option,
                     recipe_names_argument, recipes_option, seed_option, select_recipes, shape_option, spinner,
                     trust_option)


@click.command("verify")
@recipe_names_argument("Verify every recipe's artifact.")
@backend_option("verify", "ort-cpu",
                "ort-cpu = onnxruntime CPU; ort-cuda / ort-trt = its CUDA / TensorRT providers; ref = onnx "
                "ReferenceEvaluator (small shapes); trt = a TensorRT engine from build-trt.")
@precision_option("fp32 = model.onnx; fp16 / int8 = the models from `deploykit calibrate`.")
@shape_option("Also verify at this shape, e.g. --shape B=3,H=37,W=53 (repeatable; unnamed symbols take opt).")
@out_option
@click.option("--samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also verify at N more seeded in-range shapes.")
@seed_option("Seed of the sweep's off-grid shapes, the --samples and the inputs (recorded in verify.json).")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Your own ONNX file, checked against --recipe's module (its factory; --checkpoint if the "
                   "factory does not hold the weights).")
@module_option("Your module's factory, package.module:factory (optional with --recipe, which names it; after a "
               "recipe-free export, the one you exported: NAME --module mynet:build).")
@recipe_file_option("The recipe TOML for --onnx.")
@checkpoint_option("The weights your ONNX was exported from (a state_dict); not needed when the factory returns "
                   "them or the module has none.")
@force_option("a verify.json, report.md or plot")
@forward_timeout_option
@trust_option
@recipes_option
@json_option
def command(names, all_, backend, precision, shapes, out_dir, samples, seed, onnx_path, module, recipe_path,
            checkpoint, force, trust_code, recipe_dir, as_json):
    """Verify artifacts against the PyTorch reference over their declared shape range.

    \b
    Shapes: min, opt, max, two seeded off-grid shapes (H != W, odd sizes), the
    grid's edges (min + step, max - step), --samples more and every --shape.
    FP32 outputs are judged against PyTorch's own rounding too: the reference
    also runs in float64, and an error within a small multiple of PyTorch's own
    FP32 error is not a failure (the floor is in the table and verify.json).

    \b
    Exit status: 0 when every shape passes, 1 when any fails, 2 on a user error.
    Results are written next to each artifact: verify.json, report.md, plots/.

    \b
    Examples:
      deploykit verify cbam
      deploykit verify --all
      deploykit verify msaf --shape B=3,H=37,W=53 --json
      deploykit verify composite --precision int8
      deploykit verify mynet --module mynet:build --samples 8 --seed 3
      deploykit verify --onnx my.onnx --recipe my.toml --checkpoint my.pt
    """
    if onnx_path is not None and recipe_path is None:
        raise DeployKitError("--onnx needs --recipe (it names the module and the shapes to check)")
    if onnx_path is None and checkpoint is not None:
        raise DeployKitError("--checkpoint goes with --onnx: an artifact holds its own weights (weights.pt)")
    recipes = select_recipes(names, all_, recipe_dir, module, recipe_path, out_dir, trust_code)
    base = VerifyOptions(backend=backend, precision=precision, seed=seed, samples=samples, force=force)
    runs, missing = [], RecipeErrors(len(recipes))
    for recipe in recipes:
        options = replace(base, extra_shapes=[_parse_shape(s, recipe) for s in shapes])  # the recipe's symbols
        status = spinner(f"verifying {recipe.name}", not as_json)
        with status:
            def on_case(case, name=recipe.name):
                if not as_json:
                    status.update(f"verifying {name} at {case.describe()}")

            run = missing.attempt(recipe.name, lambda: verify_onnx(onnx_path, recipe, options, checkpoint=checkpoint,
                                                                   on_case=on_case)
                                  if onnx_path is not None else verify_artifact(recipe, out_dir, options,
                                                                                on_case=on_case))
            if run is None:
                continue
        runs.append(run)
        if not as_json:
            _print_run(run)
    if as_json:
        echo_json({"runs": [r.to_dict() for r in runs], "errors": missing,
                   "passed": all(r.passed for r in runs) and not missing})
    elif len(recipes) > 1:
        _print_summary(runs, missing)
    if missing:
        raise SystemExit(2)
    if not all(r.passed for r in runs):
        raise SystemExit(1)


def _parse_shape(text, recipe):
    try:
        return parse_shape_option(text, list(recipe.dims))
    except ValueError as exc:
        raise DeployKitError(str(exc)) from None


def _print_run(run):
    from rich.table import Table

    verdict = "[green]PASSED[/green]" if run.passed else "[red]FAILED[/red]"
    table = Table(title=f"{run.name}: {run.backend}/{run.precision} {verdict}", title_justify="left")
    for col in ("case", "shape", "output", "max abs", "p99 abs", "torch floor", "cosine", "backend ms", "result"):
        table.add_column(col)
    for case in run.cases:
        shape = " ".join(f"{k}={v}" for k, v in case.shape.items())
        if case.error:
            table.add_row(case.label, shape, "-", "-", "-", "-", "-", "-", f"[red]error: {case.error}[/red]")
        for m in case.outputs:
            result = "[green]pass[/green]" if m.passed else f"[red]{'; '.join(m.failures)}[/red]"
            floor = f"{m.floor:.1e}" if m.floor is not None else "-"
            table.add_row(case.label, shape, m.name, f"{m.max_abs:.2e}", f"{m.p99_abs:.2e}", floor, f"{m.cosine:.6f}",
                          f"{case.backend_ms:.1f}" if case.backend_ms is not None else "-", result)
    out = console()
    out.print(table)
    tolerance = ", ".join(f"{k}={v}" for k, v in run.tolerance.items() if v is not None)
    against = "PyTorch's outputs stored at export (reference.npz)" if run.reference != "torch" else "PyTorch"
    out.print(f"checked {run.model_file} against {against} (tolerance {tolerance}); seed {run.seed}", highlight=False)
    out.print("torch floor = max |PyTorch FP32 - PyTorch float64|, PyTorch's own rounding, computed where the plain "
              "tolerance fails ('-': not needed)", highlight=False)
    if run.coverage != "sweep":
        out.print(f"[yellow]{run.coverage}[/yellow]", highlight=False)
    for note in run.diagnosis:
        out.print(f"[yellow]diagnosis:[/yellow] {note}")


def _print_summary(runs, missing):
    from rich.table import Table

    table = Table(title="deploykit verify: summary")
    for col in ("name", "shapes", "worst max abs", "min cosine", "seconds", "result"):
        table.add_column(col)
    for run in runs:
        metrics = [m for c in run.cases for m in c.outputs]
        worst = max((m.max_abs for m in metrics), default=float("nan"))
        cosine = min((m.cosine for m in metrics), default=float("nan"))
        table.add_row(run.name, str(len(run.cases)), f"{worst:.2e}", f"{cosine:.6f}", f"{run.seconds:.1f}",
                      "[green]pass[/green]" if run.passed else "[red]FAIL[/red]")
    for m in missing:
        table.add_row(m["name"], "-", "-", "-", "-", f"[red]{m['error']}[/red]")
    console().print(table)
