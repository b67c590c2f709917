"""The families benchmark: deploykit's recipe-free CLI, the naive exporters and (YOLO) Ultralytics' exporter over the
networks in networks.py, one network at a time, each step a subprocess with a timeout.

    python benchmarks/families/run.py [--only a,b] [--force] [--timeout 600] [--work DIR] [--results FILE]

Per network: (YOLO) the checkpoint (factories.py), ``deploykit export --module ... --input ... --dim ...`` then
``deploykit verify NAME --module ...`` (no wrapper: the Ultralytics network itself, loaded by
deploykit.families.ultralytics:yolo from the checkpoint; torchvision and smp networks from factories.py), then
check.py (the independent check of the artifact and the baselines). Results are merged into results.json after
every network; report.py turns them into RESULTS.md. The harness (steps, summaries, verdicts) is
benchmarks/real_networks/run.py's. Needs the environment of setup_env.sh; CI never runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ["YOLO_OFFLINE"] = "1"  # Ultralytics: no download, no update check

from factories import cli_args  # noqa: E402
from networks import NETWORKS  # noqa: E402
from shared import real_networks  # noqa: E402

harness = real_networks("run")
harness.HERE = HERE  # its run_step runs each step from, and with PYTHONPATH at, the benchmark's folder: this one
RESULTS = HERE / "results.json"


def commands(net, out_dir: Path, checkpoint: Path) -> tuple[list[str], list[str]]:
    """The two deploykit commands a user types for ``net`` (recipe-free)."""
    module, args = cli_args(net, checkpoint)
    export = ["deploykit", "export", "--module", module]
    for name, dims in net.inputs:
        export += ["--input", f"{name}={','.join(map(str, dims))}"]
    used = {d for _, dims in net.inputs for d in dims if isinstance(d, str)}
    export += [a for sym, r in net.dims().items() if sym in used for a in ("--dim", f"{sym}={r}")]
    if net.call:
        export += ["--call", net.call]
    export += ["--args", json.dumps(args), "--name", net.name, "--out", str(out_dir)]
    return export, ["deploykit", "verify", net.name, "--module", module, "--out", str(out_dir)]


def run_network(net, work: Path, timeout: float) -> dict:
    out_dir, logs = work / "artifacts", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    artifact = out_dir / net.name
    checkpoint = work / "checkpoints" / f"{net.name}.pt"
    result = {"name": net.name, "family": net.family, "source": net.source, "kwargs": net.kwargs,
              "dims": net.dims(), "expected": net.expected, "note": net.note}
    if net.kind == "yolo":
        step = harness.run_step([sys.executable, str(HERE / "factories.py"), "checkpoint", net.name, str(checkpoint)],
                                logs / f"{net.name}.checkpoint", timeout)
        result["checkpoint_step"] = {k: step[k] for k in ("rc", "seconds", "traceback")}
    export_argv, verify_argv = commands(net, out_dir, checkpoint)
    result["commands"] = [shlex.join(export_argv + ["--force"]), shlex.join(verify_argv)]
    export = harness.run_step(export_argv + ["--force"], logs / f"{net.name}.export", timeout)
    result["export"] = {**export, **harness.summarise_export(export, artifact)}
    verify = None
    if export["rc"] == 0:
        verify = harness.run_step(verify_argv, logs / f"{net.name}.verify", timeout)
        result["verify"] = {**verify, **harness.summarise_verify(artifact)}
    result["deploykit"] = harness.outcome(export, verify)
    swept = {frozenset(s.items()) for s in result.get("verify", {}).get("shapes", []) if isinstance(s, dict)}
    probe = net.probe(swept)
    result["probe_in_sweep"] = frozenset(probe.items()) in swept
    check_out = work / "checks" / f"{net.name}.json"
    check_out.parent.mkdir(parents=True, exist_ok=True)
    check_out.unlink(missing_ok=True)
    argv = [sys.executable, str(HERE / "check.py"), net.name, "--probe", ",".join(f"{k}={v}" for k, v in probe.items()),
            "--artifact", str(artifact if export["rc"] == 0 else work / "none"), "--out", str(check_out),
            "--work", str(work / "baselines")]
    if net.kind == "yolo":
        argv += ["--checkpoint", str(checkpoint)]
    check = harness.run_step(argv, logs / f"{net.name}.check", timeout)
    result["check_step"] = {k: check[k] for k in ("rc", "seconds", "traceback")}
    if check_out.is_file():
        result.update(json.loads(check_out.read_text()))
    return result


def environment() -> dict:
    import importlib.metadata as md

    env = harness.environment()
    for dist in ("ultralytics", "segmentation_models_pytorch"):
        try:
            env["versions"][dist] = md.version(dist)
        except md.PackageNotFoundError:
            env["versions"][dist] = None
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated network names")
    parser.add_argument("--force", action="store_true", help="rerun networks already in the results")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per step")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="artifacts, checkpoints, logs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = json.loads(args.results.read_text()) if args.results.is_file() else {"networks": {}}
    only = [n for n in args.only.split(",") if n]
    networks = harness.family_round_robin(NETWORKS)
    if only:
        networks = sorted((n for n in networks if n.name in only), key=lambda n: only.index(n.name))
    with open(args.work / "run.log", "a") as log:
        for i, net in enumerate(networks, 1):
            if net.name in data["networks"] and not args.force:
                continue
            started = time.perf_counter()
            result = run_network(net, args.work, args.timeout)
            result["total_seconds"] = round(time.perf_counter() - started, 1)
            result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            data["networks"][net.name] = result
            data["environment"] = environment()
            harness.save_results(args.results, data)
            base = result.get("baselines", {})
            line = (f"{time.strftime('%H:%M:%S')} [{i}/{len(networks)}] {net.name}: deploykit {result['deploykit']} "
                    f"(export {result['export']['seconds']} s) independent "
                    f"{result.get('independent', {}).get('correct')} "
                    + " ".join(f"{k}={v.get('outcome')}" for k, v in base.items())
                    + f" total {result['total_seconds']} s")
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()


if __name__ == "__main__":
    main()
