"""Reproduce benchmarks/RESULTS.md: export and calibrate every recipe, bench torch / onnxruntime FP32 /
onnxruntime INT8 (model.int8.ort.onnx, the file `deploykit verify --precision int8` checks) at each
recipe's opt shape (2 threads, interleaved), measure this machine's GEMM peak, run the ablations behind
the onnxruntime choices, and write RESULTS.md + results.json.

Exports are cached in --work: a recipe whose artifact there was exported from the same recipe file
is not exported again (composite's reference weights come from a 150-step fit). Calibration always
runs (its per-file report and search time are part of the results).

    python benchmarks/results.py                      # everything (38 min at load 4-7, exports cached)
    python benchmarks/results.py --repeats 1 --skip-prepare --work artifacts/benchmarks

Artifacts go to --work (default artifacts/benchmarks, git-ignored). Numbers depend on the machine's
other load: every repeat records the load average, and RESULTS.md shows the spread over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deploykit.artifact import Artifact
from deploykit.bench import BenchSettings, bench_cases, bench_recipe, geomean, parse_targets
from deploykit.bench.flops import matmul_peak_gflops
from deploykit.bench.interleave import interleaved
from deploykit.bench.machine import machine_info
from deploykit.bench.op_profile import profile_ort
from deploykit.environment import versions
from deploykit.recipe import load_all
from deploykit.store.layout import INT8_MODEL, INT8_ORT_MODEL, MODEL, WEIGHTS

THREADS = 2
BACKENDS = "torch,ort-cpu,ort-cpu/int8"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- preparation -------------------------------------------------------------------------------------------
def _cached(folder: Path, recipe) -> dict | None:
    """The manifest of an export of this very recipe file already in ``folder``, else None."""
    try:
        artifact = Artifact.open(folder / recipe.name)
        artifact.check_recipe(recipe)
        artifact.check_files(MODEL, WEIGHTS)
        return artifact.manifest
    except Exception:  # missing, stale or edited: export again
        return None


def prepare(work: Path, recipes) -> tuple[dict, dict]:
    """model.onnx (optimized, the default export; cached), an unoptimized twin for the ablation, and
    `deploykit calibrate` (both INT8 targets + FP16): the export notes and each calibration's report."""
    from deploykit.export import ExportOptions, export_onnx

    notes, calibrations = {}, {}
    for recipe in recipes:
        manifest = _cached(work, recipe)
        if manifest is None:
            log(f"export {recipe.name}")
            manifest = export_onnx(recipe, work, ExportOptions(force=True)).manifest
        if _cached(work / "_unoptimized", recipe) is None:
            export_onnx(recipe, work / "_unoptimized", ExportOptions(force=True, optimize=False))
        notes[recipe.name] = manifest["ort_optimization"]
        log(f"calibrate {recipe.name} (synthetic data; load {os.getloadavg()[0]:.2f})")
        started = time.perf_counter()
        done = subprocess.run(["deploykit", "calibrate", recipe.name, "--synthetic", "32", "--out", str(work), "--force",
                               "--json"], capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            notes[recipe.name]["calibrate_error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
            continue
        report = json.loads(done.stdout)
        calibrations[recipe.name] = {"seconds": round(seconds, 1), "warnings": report["warnings"],
                                     "int8_ort": report["int8_ort"], "int8": report["int8"], "fp16": report["fp16"]}
    return notes, calibrations


# -- the benchmark ---------------------------------------------------------------------------------------------
def run_benchmarks(work: Path, recipes, repeats: int, iters: int) -> list[dict]:
    runs = []
    for repeat in range(repeats):
        load = round(os.getloadavg()[0], 2)
        log(f"repeat {repeat + 1}/{repeats} (load {load})")
        started = time.perf_counter()
        rows = []
        for recipe in recipes:
            settings = BenchSettings(warmup=10, iters=iters, rounds=6, threads=THREADS, isolated=True)
            for row in bench_recipe(recipe, work, parse_targets(BACKENDS), bench_cases(recipe), settings):
                rows.append(asdict(row))
        runs.append({"load_average_1m": load, "load_after": round(os.getloadavg()[0], 2),
                     "seconds": round(time.perf_counter() - started, 1), "rows": rows})
    return runs


def summarize(runs: list[dict], recipes) -> dict:
    """Per recipe: median over repeats of each backend's p50 and min; speedups; their spread over repeats."""
    table = {}
    for recipe in recipes:
        entry = {}
        for backend in BACKENDS.split(","):
            p50s, mins, gflops, status = [], [], [], None
            for run in runs:
                row = next(r for r in run["rows"] if r["recipe"] == recipe.name and r["target"] == backend)
                status = row["status"], row["reason"]
                if row["status"] == "ok":
                    p50s.append(row["latency_ms"]["p50"])
                    mins.append(row["latency_ms"]["min"])
                    gflops.append(row["gflops"])
                    entry["flops"] = row["flops"]
            entry[backend] = {"p50": statistics.median(p50s) if p50s else None, "min": min(mins) if mins else None,
                              "p50_runs": p50s, "gflops": statistics.median(gflops) if gflops and gflops[0] else None,
                              "status": status[0], "reason": status[1]}
        speedups = {}
        for name, (a, b) in {"ort_vs_torch": ("torch", "ort-cpu"), "int8_vs_ort": ("ort-cpu", "ort-cpu/int8")}.items():
            if entry[a]["p50"] and entry[b]["p50"]:
                per_run = [x / y for x, y in zip(entry[a]["p50_runs"], entry[b]["p50_runs"])]
                speedups[name] = {"p50": entry[a]["p50"] / entry[b]["p50"], "min": entry[a]["min"] / entry[b]["min"],
                                  "runs": per_run}
        entry["speedup"] = speedups
        table[recipe.name] = entry
    ort = [e["speedup"]["ort_vs_torch"] for e in table.values() if "ort_vs_torch" in e["speedup"]]
    per_run = [geomean([s["runs"][i] for s in ort]) for i in range(len(runs))] if ort else []
    return {"recipes": table,
            "geomean_ort_vs_torch": {"p50": geomean([s["p50"] for s in ort]), "min": geomean([s["min"] for s in ort]),
                                     "per_repeat": per_run},
            "slowest_ort_vs_torch": min(((n, e["speedup"]["ort_vs_torch"]["p50"]) for n, e in table.items()
                                         if "ort_vs_torch" in e["speedup"]), key=lambda x: x[1])}


# -- ablations: interleaved in-process timing of onnxruntime variants ------------------------------------------------
def _session(model, level="all", parallel=False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1 if parallel else THREADS
    options.inter_op_num_threads = THREADS if parallel else 1
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    options.log_severity_level = 3
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _interleaved(sessions: dict, feed: dict, per_turn: int = 20) -> dict:
    """p50 and min (ms) of each session, in 10 rounds that take turns (deploykit.bench.interleave)."""
    return interleaved({k: (lambda s=s: s.run(None, feed)) for k, s in sessions.items()}, rounds=10, per_turn=per_turn)


def ablations(work: Path, recipes, notes: dict) -> dict:
    result = {"optimize_for_ort": {}, "session_options": {}, "int8_composite": {}, "profiles": {}}
    for recipe in recipes:
        feed = recipe.make_inputs(recipe.case("opt"))
        optimized, plain = work / recipe.name / "model.onnx", work / "_unoptimized" / recipe.name / "model.onnx"
        log(f"ablation {recipe.name}")
        if notes.get(recipe.name, {}).get("applied") and plain.is_file():
            result["optimize_for_ort"][recipe.name] = _interleaved(
                {"export without optimize_for_ort": _session(plain), "export with optimize_for_ort": _session(optimized)},
                feed)
        result["session_options"][recipe.name] = _interleaved(
            {"ORT_ENABLE_ALL, sequential, intra 2": _session(optimized),
             "ORT_ENABLE_EXTENDED (no NCHWc layout)": _session(optimized, level="extended"),
             "ORT_PARALLEL, intra 1, inter 2": _session(optimized, parallel=True)}, feed, per_turn=10)
    composite = next((r for r in recipes if r.name == "composite"), None)
    folder = work / "composite"
    if composite is not None and (folder / INT8_ORT_MODEL).is_file():
        from deploykit.tensors.shapes import ShapeCase

        feed = composite.make_inputs(composite.case("opt"))
        variants = {"FP32 model.onnx": folder / MODEL,
                    "INT8 model.int8.ort.onnx (onnxruntime target, as written)": folder / INT8_ORT_MODEL,
                    "INT8 model.int8.onnx (TensorRT target, as written)": folder / INT8_MODEL}
        sessions = {label: _session(path) for label, path in variants.items() if path.is_file()}
        result["int8_composite"] = interleaved({k: (lambda s=s: s.run(None, feed)) for k, s in sessions.items()},
                                               rounds=10, per_turn=20)
        for label, model in (("fp32", folder / MODEL), ("int8 (onnxruntime target)", folder / INT8_ORT_MODEL)):
            for shape_label, values in (("opt", composite.case("opt").values), ("B=4 H=128 W=128", {"B": 4, "H": 128, "W": 128})):
                profile = profile_ort(model, composite.make_inputs(ShapeCase(shape_label, values)), THREADS, runs=30)
                result["profiles"][f"{label} {shape_label}"] = {
                    "run_min_us": profile["run_min_us"], "sum_node_min_us": profile["sum_node_min_us"],
                    "ops": [(o.op_type, o.nodes, round(o.us), round(o.share, 3)) for o in profile["ops"][:10]]}
    return result


# -- RESULTS.md ----------------------------------------------------------------------------------------------
def _ms(value):
    return "-" if value is None else (f"{value:.3f}" if value < 10 else f"{value:.2f}")


def _x(value):
    return "-" if value is None else f"{value:.2f}x"


def _calibrated(info: dict | None, key: str):
    return None if not info or "worth" not in info else info["worth"]["speed_vs_fp32"].get(key)


def render_int8(data: dict) -> list[str]:
    """The INT8 table: bench's interleaved numbers, and what `deploykit calibrate` reported and warned."""
    s, cal = data["summary"], data.get("calibrations", {})
    lines = ["## INT8 and FP16 in onnxruntime CPU: what `deploykit calibrate` wrote, reported and warned", "",
             "`ort-cpu/int8` runs model.int8.ort.onnx as written: the file `deploykit verify NAME --precision int8` checks "
             "and `deploykit.runtime` / `serve` load. bench columns: the interleaved run above (p50). calibrate columns: "
             "its own interleaved run of every file it wrote against FP32 at the opt shape (p50 / fastest call); "
             "accuracy: worst cosine and SNR against PyTorch over the verification sweep; the warning is the line "
             "calibrate printed (and recorded in the manifest) for a file not faster than FP32 on both p50 and "
             "fastest call.", "",
             "| recipe | ort-cpu p50 ms | ort-cpu/int8 p50 ms | int8 vs ort-cpu (bench) | int8 (calibrate) p50 / min | int8 warned | "
             "int8 cosine / SNR dB | quantized groups | search s | fp16 (calibrate) p50 / min | fp16 warned | "
             "calibrate s |", "|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|---:|"]
    for name, e in s["recipes"].items():
        c = cal.get(name) or {}
        ort8, fp16 = c.get("int8_ort"), c.get("fp16")
        i8 = e["speedup"].get("int8_vs_ort")
        acc = ort8["worth"]["accuracy_sweep"] if ort8 else None
        policy = ort8["policy"] if ort8 else None
        groups = policy["quantized_groups"] if policy else None
        groups = "-" if groups is None else groups if isinstance(groups, str) else ", ".join(groups)
        lines.append(
            f"| {name} | {_ms(e['ort-cpu']['p50'])} | {_ms(e['ort-cpu/int8']['p50'])} | {_x(i8 and i8['p50'])} | "
            f"{_x(_calibrated(ort8, 'speedup_vs_fp32'))} / {_x(_calibrated(ort8, 'speedup_vs_fp32_min'))} | "
            f"{'yes' if ort8 and ort8['worth'].get('warning') else 'no'} | "
            f"{acc['cosine_min']:.4f} / {acc['snr_min_db'] if acc['snr_min_db'] is not None else 'inf'} | "
            f"{groups} | {policy['seconds'] if policy else '-'} | "
            f"{_x(_calibrated(fp16, 'speedup_vs_fp32'))} / {_x(_calibrated(fp16, 'speedup_vs_fp32_min'))} | "
            f"{'yes' if fp16 and fp16['worth'].get('warning') else 'no'} | {c.get('seconds') or '-'} |"
            if acc else f"| {name} | {_ms(e['ort-cpu']['p50'])} | - | - | - | - | - | - | - | - | - | - |")
    missed = [n for n, e in s["recipes"].items() if (i8 := e["speedup"].get("int8_vs_ort")) and i8["p50"] < 1
              and not ((cal.get(n) or {}).get("int8_ort") or {}).get("worth", {}).get("warning")]
    lines += ["", f"Recipes whose INT8 model was slower than FP32 in this bench run but got no warning from calibrate: "
                  f"{', '.join(missed) or 'none'} (calibrate's own run decides the warning; the two runs are minutes "
                  "apart on a shared machine).", ""]
    return lines


def render(data: dict) -> str:
    m, v, s = data["machine"], data["versions"], data["summary"]
    peak = data["peak"]
    lines = [
        "# deploykit bench: committed results",
        "",
        f"Reproduce: `bash benchmarks/run.sh` (= `python benchmarks/results.py`). Generated {data['created']} "
        f"in {data['seconds']:.0f} s. Raw numbers: `benchmarks/results.json`.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {m['cpu']} ({m['physical_cores']} cores, {m['logical_cpus']} logical CPUs, "
        f"{m['threads_per_core']} thread(s) per core; flags {', '.join(m['cpu_flags'])}; hypervisor {m['hypervisor']})",
        f"- Memory: {m['memory_gib']} GiB; OS {m['os']}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Threads: {THREADS} for every backend (torch.set_num_threads, onnxruntime intra_op_num_threads); torch runs "
        "eager under torch.inference_mode.",
        f"- Load: other jobs ran on this machine; load average (1 min) at the start of each repeat: "
        f"{', '.join(str(r['load_average_1m']) for r in data['runs'])}.",
        "",
        "## Method",
        "",
        f"`deploykit bench` at each recipe's opt shape: each backend in a fresh process, {data['iters']} timed calls "
        "after 10 warm-up calls, in 6 rounds that take turns between backends (so bursts of other load hit all of "
        f"them alike), repeated {len(data['runs'])} times. Per recipe the table shows the median over repeats of each "
        "repeat's p50, and the fastest single call seen (min, the least disturbed by other load). Speedup = torch / "
        "onnxruntime on those. The p50 column is the headline; min is shown because on a shared 2-core machine "
        "PyTorch's OpenMP threads lose whole scheduler slices when another process holds a core (its p90 is often "
        "5-50x its p50 here), which the p50 still partly includes.",
        "",
        "## Every recipe: PyTorch eager vs onnxruntime CPU (FP32) and the Q/DQ INT8 model",
        "",
        "| recipe | MFLOP | torch p50 ms | ort p50 ms | speedup p50 | speedup min | spread over repeats | "
        "ort-cpu/int8 p50 ms | int8 vs ort-cpu FP32 |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, e in s["recipes"].items():
        sp = e["speedup"].get("ort_vs_torch")
        i8 = e["speedup"].get("int8_vs_ort")
        runs = sp["runs"] if sp else []
        spread = f"{min(runs):.2f}-{max(runs):.2f}x" if runs else "-"
        int8_cell = _ms(e["ort-cpu/int8"]["p50"]) if e["ort-cpu/int8"]["status"] == "ok" else f"{e['ort-cpu/int8']['status']}"
        lines.append(f"| {name} | {(e.get('flops') or 0) / 1e6:.1f} | {_ms(e['torch']['p50'])} | {_ms(e['ort-cpu']['p50'])} | "
                     f"{_x(sp and sp['p50'])} | {_x(sp and sp['min'])} | {spread} | {int8_cell} | {_x(i8 and i8['p50'])} |")
    g = s["geomean_ort_vs_torch"]
    slow_name, slow_value = s["slowest_ort_vs_torch"]
    lines += [
        "",
        f"**Geometric mean speedup of onnxruntime over PyTorch eager: {g['p50']:.2f}x on p50** "
        f"({g['min']:.2f}x on min; per repeat: {', '.join(f'{x:.2f}x' for x in g['per_repeat'])}). "
        f"Slowest: {slow_name} at {slow_value:.2f}x.",
        "",
        *render_int8(data),
        "## The composite's arithmetic rate",
        "",
        f"Matrix-multiply peak of this machine: torch `mm` {peak['size']}x{peak['size']} float32 at {THREADS} threads: "
        f"**{peak['best_gflops']:.0f} GFLOP/s** best, {peak['median_gflops']:.0f} GFLOP/s median "
        f"(measured before and after the runs: {', '.join(f'{p:.0f}' for p in data['peak_all'])} GFLOP/s best).",
        "",
    ]
    comp = s["recipes"]["composite"]
    lines += ["| composite, B=2 3x64x64 | FLOPs (torch FlopCounterMode: conv/matmul) | p50 ms | achieved GFLOP/s | of peak |",
              "|---|---:|---:|---:|---:|"]
    for backend in BACKENDS.split(","):
        e = comp[backend]
        if e["p50"]:
            rate = comp["flops"] / (e["p50"] / 1e3) / 1e9
            lines.append(f"| {backend} | {comp['flops'] / 1e6:.1f} M | {_ms(e['p50'])} | {rate:.1f} | "
                         f"{rate / peak['best_gflops']:.0%} |")
    lines += ["", "The ort-cpu/int8 row counts the same FLOPs done as INT8 arithmetic, whose peak is above the FP32 GEMM "
              "peak: its percentage only compares it with FP32."]
    ab = data["ablations"]
    lines += ["", "## What was changed, and what each change measured", ""]
    lines += [
        "In-process timing of onnxruntime variants taking turns (10 rounds of 20 calls each, a pause before each turn), "
        "onnxruntime at "
        f"{THREADS} threads, opt shape; p50 ms (min ms).", "",
        "### Export: `optimize_for_ort` (deploykit/export/optimize.py), kept only when the parity check passes", "",
        "| recipe | without | with | change |", "|---|---:|---:|---:|"]
    for name, r in ab["optimize_for_ort"].items():
        a, b = r["export without optimize_for_ort"], r["export with optimize_for_ort"]
        lines.append(f"| {name} | {_ms(a['p50'])} ({_ms(a['min'])}) | {_ms(b['p50'])} ({_ms(b['min'])}) | "
                     f"{a['p50'] / b['p50']:.2f}x |")
    lines += ["", "### Session options (all recipes; the default kept: ORT_ENABLE_ALL, sequential, 2 intra-op threads)", "",
              "| recipe | ENABLE_ALL | ENABLE_EXTENDED (no NCHWc) | ORT_PARALLEL intra 1 inter 2 |", "|---|---:|---:|---:|"]
    for name, r in ab["session_options"].items():
        vals = list(r.values())
        lines.append("| " + name + " | " + " | ".join(f"{_ms(x['p50'])} ({_ms(x['min'])})" for x in vals) + " |")
    if ab.get("int8_composite"):
        lines += ["", "### INT8 files of the composite in onnxruntime CPU (opt shape, as written, no load-time rewrite)", "",
                  "| variant | p50 ms | min ms |", "|---|---:|---:|"]
        for label, r in ab["int8_composite"].items():
            lines.append(f"| {label} | {_ms(r['p50'])} | {_ms(r['min'])} |")
        lines += ["", "Per-operator time of the composite in onnxruntime (its profiler; per node the fastest of 30 runs, "
                  "summed per op type, µs):", "", "| model, shape | run min µs | top operators |", "|---|---:|---|"]
        for label, p in ab["profiles"].items():
            ops = ", ".join(f"{op} x{n}: {us}" for op, n, us, _ in p["ops"])
            lines.append(f"| {label} | {p['run_min_us']} | {ops} |")
    lines += ["", data.get("notes", "").strip(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "artifacts" / "benchmarks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--skip-prepare", action="store_true", help="Reuse the artifacts already in --work.")
    parser.add_argument("--only", default=None, metavar="A,B", help="Only these recipes (a quick check of this script).")
    parser.add_argument("--notes", type=Path, default=Path(__file__).with_name("NOTES.md"),
                        help="Hand-written analysis appended to RESULTS.md.")
    parser.add_argument("--render-only", action="store_true",
                        help="Rewrite RESULTS.md from results.json (e.g. after editing NOTES.md); measure nothing.")
    args = parser.parse_args()
    out = Path(__file__).parent
    if args.render_only:
        data = json.loads((out / "results.json").read_text())
        data["notes"] = args.notes.read_text() if args.notes.is_file() else ""
        (out / "RESULTS.md").write_text(render(data))
        return
    started = time.perf_counter()
    recipes = load_all(REPO / "recipes")
    if args.only:
        recipes = [r for r in recipes if r.name in args.only.split(",")]
    if args.skip_prepare:
        manifests = {r.name: Artifact.open(args.work / r.name).manifest for r in recipes}
        notes = {n: m.get("ort_optimization", {}) for n, m in manifests.items()}
        calibrations = {n: {"seconds": None, "warnings": [s["worth"]["warning"] for s in (m.get("int8_ort"), m.get("fp16"))
                                                          if s and s["worth"].get("warning")],
                            "int8_ort": m.get("int8_ort"), "int8": m.get("int8"), "fp16": m.get("fp16")}
                        for n, m in manifests.items()}
    else:
        notes, calibrations = prepare(args.work, recipes)
    peaks = [matmul_peak_gflops(THREADS)]
    log(f"GEMM peak {peaks[0]['best_gflops']:.0f} GFLOP/s")
    runs = run_benchmarks(args.work, recipes, args.repeats, args.iters)
    abl = ablations(args.work, recipes, notes)
    peaks.append(matmul_peak_gflops(THREADS))
    data = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
            "versions": {**versions("numpy", "torch", "onnxruntime", "onnx"), "platform": platform.platform()},
            "iters": args.iters, "runs": runs, "summary": summarize(runs, recipes),
            "peak": max(peaks, key=lambda p: p["best_gflops"]), "peak_all": [p["best_gflops"] for p in peaks],
            "ablations": abl, "export_optimizations": notes, "calibrations": calibrations, "seconds": time.perf_counter() - started,
            "notes": args.notes.read_text() if args.notes.is_file() else ""}
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    (out / "RESULTS.md").write_text(render(data))
    log(f"wrote {out / 'RESULTS.md'} in {data['seconds']:.0f} s")


if __name__ == "__main__":
    main()
