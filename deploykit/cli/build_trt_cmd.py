"""deploykit build-trt: TensorRT engines from exported artifacts, checked before and after the build."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (console, echo_json, force_option, json_option, module_option, out_option, recipe_names_argument,
                     recipes_option, select_recipes, trt_version_option, trust_option)


@click.command("build-trt")
@recipe_names_argument("Every recipe (each needs its artifact from `deploykit export`).")
@click.option("--fp32", is_flag=True, help="Build the FP32 engine (the default when no precision is given).")
@click.option("--fp16", is_flag=True, help="Build the FP16 engine (TensorRT 10: FP16 flag; 11: model.fp16.onnx).")
@click.option("--int8", is_flag=True, help="Build the INT8 engine (Q/DQ model.int8.onnx, or calibration.cache on TensorRT 10).")
@click.option("--int8-source", type=click.Choice(["auto", "qdq", "cache"]), default="auto", show_default=True,
              help="TensorRT 10 INT8 input: auto prefers the Q/DQ model, then the calibration cache.")
@click.option("--workspace", type=float, default=None, metavar="GiB", help="Workspace memory pool limit (default: TensorRT's).")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Timing cache file: read if present, updated after each build.")
@click.option("--opt-level", type=int, default=None, help="Builder optimization level 0..5 (TensorRT's default: 3).")
@trt_version_option("TensorRT version the checks target (default: the installed one, else the pinned table's 10.15).")
@click.option("--dry-run", is_flag=True, help="Run only the CPU checks: exit 0 when clean, 1 when there are problems.")
@click.option("--no-check", is_flag=True, help="Skip the parity check of each engine after its build.")
@force_option("engines")
@out_option
@module_option()
@trust_option
@recipes_option
@json_option
@click.pass_context
def command(ctx, names, all_, fp32, fp16, int8, int8_source, workspace, timing_cache, opt_level, trt_version, dry_run,
            no_check, force, out_dir, module, trust_code, recipe_dir, as_json):
    """Build TensorRT engines (plain .plan + JSON sidecar) from artifacts made by `deploykit export`.

    \b
    CPU checks always run first: every ONNX operator and attribute against the
    TensorRT ONNX parser's documented support, Q/DQ constraints, the optimization
    profile (min/opt/max from the recipe, related inputs consistent), and dims the
    engine needs that the ONNX lacks. Problems are listed with the node and a fix.
    Without TensorRT or a GPU, the checks run and the command exits 3 with one line
    saying what is missing.

    \b
    Exit codes: 0 ok, 1 problems or a failed engine check, 2 usage error, 3 no TensorRT/GPU.

    \b
    Examples:
      deploykit build-trt --all --dry-run            # CPU checks only
      deploykit build-trt cbam                       # FP32 engine, checked against PyTorch
      deploykit build-trt composite --fp16 --int8 --workspace 4 --timing-cache trt.cache
      deploykit build-trt fpn --fp32 --fp16 --opt-level 5 --json
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..trt.build import build_engines
    from ..trt.builder import BuildOptions

    precisions = [p for p, on in (("fp32", fp32), ("fp16", fp16), ("int8", int8)) if on] or ["fp32"]
    options = BuildOptions(workspace, timing_cache, opt_level, force)
    options.check()
    recipes = select_recipes(names, all_, recipe_dir, module, out_dir=out_dir, trust_code=trust_code)
    out = console()
    # the builds' progress on stderr, from when the checks are printed until the last engine is checked
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console(stderr=True), transient=True, disable=as_json)
    task = progress.add_task("build-trt")

    def on_checked(run):
        if not as_json:
            _print_checks(out, run)
        if run.buildable:
            progress.start()

    def on_plan(name, precision, plan):
        if not as_json:
            progress.console.print(f"{name} {precision}: {plan.description}")

    try:
        run = build_engines(recipes, out_dir, precisions, options, trt_version=trt_version, int8_source=int8_source,
                            dry_run=dry_run, check=not no_check, on_checked=on_checked, on_plan=on_plan,
                            on_step=lambda message: progress.update(task, description=message))
    finally:
        if progress.live.is_started:  # (stopping one never started prints a blank line)
            progress.stop()
    if as_json:
        echo_json(run.to_dict())
    elif run.builds is not None:
        _print_builds(out, run.builds, run.engine_checks)
    elif not dry_run and (run.findings or run.errors):
        out.print("[red]nothing was built: fix the problems above first[/red]")
    if not dry_run and not run.machine.ok:
        click.echo(f"error: {run.machine.missing}", err=True)
    ctx.exit(run.exit_code)


def _print_checks(out, run):
    from rich.table import Table

    out.print(f"CPU checks against {run.target.describe()}")
    if run.findings:
        table = Table(title="problems found before the build", show_lines=True)
        for col in ("recipe", "file", "where", "check", "problem", "what to do"):
            table.add_column(col, overflow="fold")
        for f in run.findings:
            p = f.problem
            table.add_row(f.name, f.file, p.where, p.check, p.message, p.fix)
        out.print(table)
    table = Table(title="build-trt plan")
    for col in ("recipe", "checks", "precision paths", "profile (min/opt/max)"):
        table.add_column(col, overflow="fold")
    for pre in run.checks:
        status = "[green]clean[/green]" if pre.clean else f"[red]{len(pre.findings)} problem(s)[/red]"
        paths = "\n".join(f"{p}: {plan.path}" for p, plan in pre.plans.items()) or "-"
        table.add_row(pre.name, status, paths, pre.profile.describe())
    out.print(table)
    for e in run.errors:
        out.print(f"[red]{e['name']}: {e['error']}[/red]")


def _print_builds(out, builds, checks):
    from rich.table import Table

    by_key = {(c["name"], c["precision"]): c for c in checks}
    table = Table(title="TensorRT engines")
    for col in ("recipe", "precision", "path", "plan", "build s", "check"):
        table.add_column(col, overflow="fold")
    for b in builds:
        check = by_key.get((b["name"], b["precision"]))
        if b.get("error"):
            verdict = f"[red]build failed: {b['error']}[/red]"
        elif check is None:
            verdict = "not checked"
        elif check["passed"]:
            verdict = f"[green]passed {len(check['cases'])} shapes[/green]"
        else:
            bad = next(c for c in check["cases"] if not c["passed"]) if check["cases"] else None
            verdict = f"[red]failed at {bad['case']}: {bad['failures'][0]}[/red]" if bad else "[red]no shape in profile[/red]"
        table.add_row(b["name"], b["precision"], b["path"], b.get("plan", "-"), str(b.get("seconds", "-")), verdict)
    out.print(table)
