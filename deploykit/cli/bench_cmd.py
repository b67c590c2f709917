"""deploykit bench: latency, throughput and peak memory of every backend of an artifact."""

from __future__ import annotations

import click

from ..errors import DeployKitError
from .common import (console, echo_json, force_option, json_option, module_option, out_option, recipe_names_argument,
                     recipes_option, select_recipes, shape_option, spinner, threads_option, trust_option)


@click.command("bench")
@recipe_names_argument("Benchmark every recipe's artifact.")
@click.option("--backends", "backends_text", default=None, metavar="A,B,...",
              # the names are the backend table's bench column (tests/test_backend_table.py holds them equal; the
              # table is not imported here: it loads torch, and `bench --help` should not)
              help="Comma-separated backends, each optionally /fp16 or /int8: torch, ort-cpu, ort-cuda, ort-trt, ref, "
                   "trt [default: torch,ort-cpu,ort-cpu/int8,ort-cpu/fp16,trt]. Unavailable ones are listed as "
                   "skipped, with why.")
@shape_option("Time at this shape instead of the opt shape, e.g. --shape H=64,W=64 (repeatable; unnamed symbols "
              "take opt).")
@click.option("--batch", "batch_text", default=None, metavar="N,N,...", help="Batch sizes to time, e.g. 1,2,8.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Untimed calls first.")
@click.option("--iters", type=click.IntRange(min=1), default=50, show_default=True, help="Timed calls per backend.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Backends take turns this many times (bursts of other load hit all of them alike).")
@threads_option("Intra-op threads for every backend (torch.set_num_threads, onnxruntime intra_op_num_threads).")
@click.option("--in-process", is_flag=True,
              help="Run every backend in this process: quicker to start, but no peak-memory figure.")
@click.option("--profile", is_flag=True, help="Also print onnxruntime's per-operator times for the ort backends.")
@click.option("--no-write", is_flag=True, help="Print only; write no bench.json or plots.")
@force_option("bench files")
@out_option
@module_option()
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
    from ..bench import BenchSettings, bench, parse_batches, parse_targets

    targets = parse_targets(backends_text)
    batches = parse_batches(batch_text)
    recipes = select_recipes(names, all_, recipe_dir, module, out_dir=out_dir, trust_code=trust_code)
    settings = BenchSettings(warmup=warmup, iters=iters, rounds=rounds, threads=threads, isolated=not in_process)
    status = spinner("bench", not as_json)
    with status:
        run = bench(recipes, out_dir, targets, shapes=shapes, batches=batches, settings=settings, write=not no_write,
                    force=force, on_step=status.update)
    data = run.to_dict()
    if as_json:
        echo_json(data)
    else:
        _print(data, run.written)
        if profile:
            _print_profiles(run)
    if run.problem and not run.errors:
        raise DeployKitError(run.problem)  # one line (the recipes' errors are in the output already)
    raise SystemExit(run.exit_code)


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


def _print_profiles(run):
    from ..bench import profile_ops

    out = console()
    for profile in profile_ops(run):
        top = ", ".join(f"{o.op_type} {o.us:.0f}µs ({o.share:.0%})" for o in profile["ops"][:6])
        out.print(f"{profile['recipe']} {profile['target']} {profile['case']}: {top}")
