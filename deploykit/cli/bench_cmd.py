"""deploykit bench: latency, throughput and peak memory of every backend of an artifact."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import DeployKitError, RecipeErrors
from .common import (console, echo_json, force_option, json_option, module_option, out_option, recipes_option,
                     select_recipes, spinner, trust_option)


@click.command("bench")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Benchmark every recipe's artifact.")
@click.option("--backends", "backends_text", default=None, metavar="A,B,...",
              # the names are the backend table's bench column (tests/test_backend_table.py holds them equal; the
              # table is not imported here: it loads torch, and `bench --help` should not)
              help="Comma-separated backends, each optionally /fp16 or /int8: torch, ort-cpu, ort-cuda, ort-trt, ref, "
                   "trt [default: torch,ort-cpu,ort-cpu/int8,ort-cpu/fp16,trt]. Unavailable ones are listed as "
                   "skipped, with why.")
@click.option("--shape", "shapes", multiple=True, metavar="SYM=N,...",
              help="Time at this shape instead of the opt shape, e.g. --shape H=64,W=64 (repeatable; "
                   "unnamed symbols take opt).")
@click.option("--batch", "batch_text", default=None, metavar="N,N,...", help="Batch sizes to time, e.g. 1,2,8.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Untimed calls first.")
@click.option("--iters", type=click.IntRange(min=1), default=50, show_default=True, help="Timed calls per backend.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Backends take turns this many times (bursts of other load hit all of them alike).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Intra-op threads for every backend (torch.set_num_threads, onnxruntime intra_op_num_threads).")
@click.option("--in-process", is_flag=True,
              help="Run every backend in this process: quicker to start, but no peak-memory figure.")
@click.option("--profile", is_flag=True, help="Also print onnxruntime's per-operator times for the ort backends.")
@click.option("--no-write", is_flag=True, help="Print only; write no bench.json or plots.")
@force_option("bench files")
@out_option
@module_option
@trust_option
@recipes_option
@json_option
def command(names, all_, backends_text, shapes, batch_text, warmup, iters, rounds, threads, in_process, profile,
            no_write, force, out_dir, module, trust_code, recipe_dir, as_json):
    """Time every backend of exported artifacts: p50/p90/p99 latency, throughput, peak memory.

    \b
    Each backend runs in a fresh process (peak memory = its RSS high-water mark
    above the import baseline), warmed up, then timed in rounds that take turns
    between backends. Default shape: the recipe's opt shape. Results: a table
    (or --json), and <out>/<name>/bench.json + bench.png (+ bench-sweep.png for
    several shapes); with several recipes also <out>/bench.json and bench.png.

    \b
    Examples:
      deploykit bench cbam
      deploykit bench --all --backends torch,ort-cpu
      deploykit bench composite --backends ort-cpu,ort-cpu/int8 --batch 1,2,4
      deploykit bench msaf --shape H=32,W=32 --shape H=64,W=64 --iters 100 --json
    """
    from ..bench import BenchSettings, bench_cases, bench_recipe, parse_batches, parse_targets, report_header, summarize
    from ..bench.outputs import document, write_recipe_results, write_summary

    targets = parse_targets(backends_text)
    batches = parse_batches(batch_text)
    recipes = select_recipes(names, all_, recipe_dir, module, out_dir=out_dir, trust_code=trust_code)
    plans = [(recipe, bench_cases(recipe, list(shapes), batches)) for recipe in recipes]  # all errors before any run
    settings = BenchSettings(warmup=warmup, iters=iters, rounds=rounds, threads=threads, isolated=not in_process)
    header = report_header(settings)
    rows, errors, written = [], RecipeErrors(len(plans)), []
    status = spinner("bench", not as_json)
    with status:
        for recipe, cases in plans:
            recipe_rows = errors.attempt(recipe.name, lambda: bench_recipe(recipe, out_dir, targets, cases, settings,
                                                                           on_step=status.update))
            if recipe_rows is None:
                continue
            rows.extend(recipe_rows)
            if not no_write:
                written += write_recipe_results(Path(out_dir) / recipe.name, header, recipe_rows, force)
        if not no_write and len(plans) > 1 and rows:
            written += write_summary(Path(out_dir), header, rows, force)
    data = document(header, rows)
    data["summary"] = summarize(data["results"])
    if errors:
        data["errors"] = errors
    if as_json:
        echo_json(data)
    else:
        _print(data, written)
        if profile:
            _print_profiles(data["results"], {r.name: r for r in recipes}, out_dir, threads)
    if errors:
        raise SystemExit(2)
    _check_ran(rows)


def _check_ran(rows) -> None:
    """A run in which a backend failed, or none ran, is not a benchmark: non-zero, with the first reason."""
    failed = [r for r in rows if r.status == "failed"]
    if rows and not any(r.status == "ok" for r in rows):
        first = (failed or rows)[0]
        raise DeployKitError(f"no backend ran: {first.target}: {first.reason}")
    if failed:
        raise DeployKitError(f"{len(failed)} of {len(rows)} runs failed: {failed[0].target}: {failed[0].reason}")


def _fmt(value, spec=".3f"):
    return "-" if value is None else format(value, spec)


def _print(data, written):
    from rich.table import Table

    settings = data["settings"]
    machine = data["machine"]
    table = Table(title=f"deploykit bench: {machine['cpu']}, {settings['threads']} threads, "
                        f"{settings['iters']} iters ({settings['warmup']} warm-up), load {machine['load_average_1m']}",
                  title_justify="left")
    for col in ("recipe", "shape", "backend", "p50 ms", "p90 ms", "p99 ms", "items/s", "peak MB (+model)",
                "GFLOP/s", "vs torch"):
        table.add_column(col, justify="left" if col in ("recipe", "shape", "backend") else "right")
    last = None
    reasons: dict[str, int] = {}  # one footnote per distinct reason (the same GPU reason for every recipe)
    for row in data["results"]:
        shown = row["recipe"] if row["recipe"] != last else ""
        last = row["recipe"]
        shape = " ".join(f"{k}={v}" for k, v in row["shape"].items())
        if row["status"] != "ok":
            colour = "yellow" if row["status"] == "skipped" else "red"
            note = reasons.setdefault(row["reason"], len(reasons) + 1)
            table.add_row(shown, shape, row["target"], f"[{colour}]{row['status']} [{note}][/{colour}]", *[""] * 6)
            continue
        lat, mem = row["latency_ms"], row["memory"]
        memory = f"{mem['peak_rss_mb']:.0f} (+{mem['delta_rss_mb']:.0f})" if mem else "-"
        vs = row["speedup"].get("torch")
        table.add_row(shown, shape, row["target"], _fmt(lat["p50"]), _fmt(lat["p90"]), _fmt(lat["p99"]),
                      _fmt(row["throughput"], ".0f"), memory, _fmt(row["gflops"], ".1f"),
                      "-" if vs is None or row["target"] == "torch" else f"{vs:.2f}x")
    out = console()
    out.print(table)
    for reason, note in reasons.items():
        out.print(f"[{note}] {reason}", highlight=False)
    for target, s in data["summary"]["geomean_speedup_vs_torch"].items():
        if s["recipes"] > 1:
            out.print(f"{target} vs torch at opt shapes: geomean {s['geomean']:.2f}x, slowest {s['min']:.2f}x "
                      f"over {s['recipes']} recipes")
    for error in data.get("errors", []):
        out.print(f"[red]{error['name']}: {error['error']}[/red]")
    if written:
        out.print("wrote " + ", ".join(str(p) for p in written[:4]) + (f" (+{len(written) - 4} more)" if len(written) > 4 else ""))


def _print_profiles(rows, recipes, out_dir, threads):
    from ..artifact import Artifact
    from ..bench.op_profile import profile_ort
    from ..tensors.shapes import ShapeCase

    out = console()
    for row in rows:
        if row["status"] != "ok" or not row["backend"].startswith("ort-"):  # torch/TensorRT have their own profilers
            continue
        recipe = recipes[row["recipe"]]  # the recipes selected, from --recipes if given
        artifact = Artifact.open(Path(out_dir) / row["recipe"])
        feed = recipe.make_inputs(ShapeCase(row["case"], row["shape"]))
        result = profile_ort(artifact.path(row["file"]), feed, threads)
        top = ", ".join(f"{o.op_type} {o.us:.0f}µs ({o.share:.0%})" for o in result["ops"][:6])
        out.print(f"{row['recipe']} {row['target']} {row['case']}: {top}")
