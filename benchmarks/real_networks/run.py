"""The real-network benchmark: deploykit's CLI and a naive torch.onnx.export over the timm models in
models.py, one model at a time, each step a subprocess with a timeout.

    python benchmarks/real_networks/run.py [--only a,b] [--force] [--timeout 300] [--work DIR]

Per model: ``deploykit export`` then ``deploykit verify`` (deploykit_cli.py builds the argv), then
check.py (the naive baseline and the independent onnxruntime check of the artifact). Results are merged
into results.json after every model (a rerun skips the models already there unless --force), progress
goes to WORK/run.log, each step's stdout/stderr to WORK/logs/. report.py turns results.json into
RESULTS.md. Needs the environment of setup_env.sh (timm); CI never runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from deploykit_cli import COMMANDS  # noqa: E402
from models import MODELS  # noqa: E402

RESULTS = HERE / "results.json"


def family_round_robin(models):
    """One model of each family, then the next of each...: a run cut short still covers every family."""
    queues: dict[str, list] = {}
    for m in models:
        queues.setdefault(m.family, []).append(m)
    ordered = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def run_step(argv, log_stem: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    if argv[0] == "deploykit":  # the console script of this interpreter's environment
        argv = [str(Path(sys.executable).parent / "deploykit"), *argv[1:]]
    try:
        proc = subprocess.run(argv, cwd=HERE, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = "timeout"
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
    seconds = round(time.perf_counter() - started, 2)
    Path(f"{log_stem}.out").write_text(out)
    Path(f"{log_stem}.err").write_text(err)
    err_lines = [line for line in err.splitlines() if line.strip()]
    traceback = None
    if "Traceback (most recent call last)" in err:
        after = err[err.rindex("Traceback (most recent call last)"):].splitlines()
        traceback = next((line for line in reversed(after) if line.strip() and not line.startswith(" ")), after[-1])
    error = next((line[len("error: "):] for line in err_lines if line.startswith("error: ")), None)
    return {"argv": argv, "rc": rc, "seconds": seconds, "stdout_lines": len(out.splitlines()),
            "stderr_lines": len(err_lines), "error": error, "traceback": traceback,
            "stderr_head": err_lines[:3]}


def summarise_export(step: dict, artifact: Path) -> dict:
    manifest_path = artifact / "manifest.json"
    if step["rc"] != 0 or not manifest_path.is_file():
        return {}
    m = json.loads(manifest_path.read_text())
    return {"exporter": m["exporter"], "opset": m["opset"]["actual"], "nodes": m["nodes"],
            "attempts": [{k: a.get(k) for k in ("exporter", "ok", "reason")} for a in m["exporter_attempts"]],
            "simplifiers": m.get("simplifier_attempts"), "rewrites": [r["rewrite"] for r in m.get("rewrites", [])],
            "ort_optimization": m.get("ort_optimization", {}).get("applied"), "weights": m.get("weights")}


def summarise_verify(artifact: Path) -> dict:
    path = artifact / "verify.json"
    if not path.is_file():
        return {}
    run = json.loads(path.read_text())["runs"].get("ort-cpu/fp32")
    if run is None:
        return {}
    metrics = [o for c in run["cases"] for o in c["outputs"]]
    failed = [c["label"] for c in run["cases"] if not c["passed"]]
    worst = max((o["max_abs"] for o in metrics if isinstance(o["max_abs"], (int, float))), default=None)
    return {"passed": run["passed"], "cases": len(run["cases"]), "failed_cases": failed, "worst_max_abs": worst,
            "shapes": [c["shape"] for c in run["cases"]], "diagnosis": run.get("diagnosis", []),
            "first_failure": next((f for o in metrics for f in o["failures"]), None),
            "case_errors": [c["error"] for c in run["cases"] if c.get("error")][:2]}


def outcome(export: dict, verify: dict | None) -> str:
    """verified / refused (export refused or verify failed, with one line) / error (traceback, timeout, crash)."""
    for step in (export, verify):
        if step and (step["traceback"] or step["rc"] not in (0, 1, 2)):
            return "error"
    if export["rc"] != 0:
        return "refused"
    return "verified" if verify and verify["rc"] == 0 else "refused"


def run_model(spec, work: Path, timeout: float) -> dict:
    out_dir, recipe_dir, logs = work / "artifacts", work / "recipes", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    artifact = out_dir / spec.name
    export_argv, verify_argv = COMMANDS(spec, out_dir, recipe_dir)
    export_argv += ["--force"]  # reruns overwrite the benchmark's own earlier artifact
    result = {"name": spec.name, "family": spec.family, "timm_name": spec.timm_name, "kwargs": spec.kwargs,
              "hw": spec.hw, "static": spec.static, "size_reason": spec.reason}
    export = run_step(export_argv, logs / f"{spec.name}.export", timeout)
    result["export"] = {**export, **summarise_export(export, artifact)}
    verify = None
    if export["rc"] == 0:
        verify = run_step(verify_argv, logs / f"{spec.name}.verify", timeout)
        result["verify"] = {**verify, **summarise_verify(artifact)}
    result["deploykit"] = outcome(export, verify)
    swept = {(s["B"], s["H"], s["W"]) for s in result.get("verify", {}).get("shapes", [])}
    probe = spec.probe(swept)
    result["probe_in_sweep"] = probe in swept
    check_out = work / "checks" / f"{spec.name}.json"
    check_out.parent.mkdir(parents=True, exist_ok=True)
    check_out.unlink(missing_ok=True)
    check = run_step([sys.executable, str(HERE / "check.py"), spec.name, "--probe", ",".join(map(str, probe)),
                      "--artifact", str(artifact if export["rc"] == 0 else work / "none"), "--out", str(check_out),
                      "--work", str(work / "naive")], logs / f"{spec.name}.check", timeout)
    result["check_step"] = {k: check[k] for k in ("rc", "seconds", "traceback")}
    if check_out.is_file():
        result.update(json.loads(check_out.read_text()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--force", action="store_true", help="rerun models already in results.json")
    parser.add_argument("--first", default="", help="comma-separated model names to run before the others")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per step (export, verify, check)")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="artifacts, logs, generated recipes")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = json.loads(args.results.read_text()) if args.results.is_file() else {"models": {}}
    only = {n for n in args.only.split(",") if n}
    first = [n for n in args.first.split(",") if n]
    models = [m for m in family_round_robin(MODELS) if (not only or m.name in only)]
    models.sort(key=lambda m: first.index(m.name) if m.name in first else len(first))  # stable: round robin after
    with open(args.work / "run.log", "a") as log:
        for i, spec in enumerate(models, 1):
            if spec.name in data["models"] and not args.force:
                continue
            started = time.perf_counter()
            result = run_model(spec, args.work, args.timeout)
            result["total_seconds"] = round(time.perf_counter() - started, 1)
            data["models"][spec.name] = result
            data["environment"] = environment()
            save_results(args.results, data)
            naive = result.get("naive", {})
            line = (f"{time.strftime('%H:%M:%S')} [{i}/{len(models)}] {spec.name}: deploykit {result['deploykit']} "
                    f"(export {result['export']['seconds']} s) independent "
                    f"{result.get('independent', {}).get('correct')} naive ts={naive.get('torchscript', {}).get('outcome')} "
                    f"dynamo={naive.get('dynamo', {}).get('outcome')} total {result['total_seconds']} s")
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()


def save_results(path: Path, data: dict) -> None:
    """results.json after every network, never half-written (a run is long and may be stopped)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def environment() -> dict:
    import importlib.metadata as md

    versions = {}
    for dist in ("torch", "torchvision", "timm", "onnx", "onnxruntime", "onnxscript", "onnxsim", "onnxslim", "deploykit"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {"versions": versions, "python": sys.version.split()[0], "cpus": os.cpu_count()}


if __name__ == "__main__":
    main()
