"""``bench``: the library call under ``deploykit bench`` (every recipe, its files written, one ``BenchRun``), over
``bench_recipe``: every requested backend of one artifact, timed at each shape case, as result rows."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..artifact import Artifact
from ..backends import Target, parse_targets as _parse_targets
from ..errors import RecipeErrors
from ..tensors.shapes import ShapeCase
from .cases import bench_cases, items_per_call
from .flops import count_flops
from ..environment import versions
from .machine import machine_info
from .op_profile import profile_ort
from .outputs import document, write_recipe_results, write_summary
from .schema import SCHEMA_ID
from .stats import LatencyStats, speedup, summarize
from .worker import InProcessWorker, ProcessWorker, WorkerFailed, WorkSpec

MEMORY_METHOD = ("RSS high-water mark of a fresh process per backend (Linux VmHWM, reset after imports and "
                 "input creation); delta = peak - RSS at that baseline")
TIMED = "runner.infer_impl(feed): host arrays in, host arrays out, after one input check and the warm-up"
SPEEDUP_BASELINES = ("torch", "ort-cpu")  # targets every row is compared with
DEFAULT_TARGETS = ("torch", "ort-cpu", "ort-cpu/int8", "ort-cpu/fp16", "trt")
# Pause before each backend's turn: thread pools (OpenMP, onnxruntime) spin-wait for a while after
# work, and a neighbour's spinning threads would be timed as this backend's loss. Measured on composite
# (ort vs ort-int8, 0.6 ms calls): 20 ms pauses left 3-5 ms p90 tails on both, 100 ms removed them.
SETTLE_SECONDS = 0.1


def parse_targets(text: str | None) -> list[Target]:
    """``--backends``: ``"torch,ort-cpu,ort-cpu/int8"`` -> targets (DEFAULT_TARGETS when None)."""
    return _parse_targets(text, DEFAULT_TARGETS)


@dataclass
class BenchSettings:
    warmup: int = 10
    iters: int = 50
    rounds: int = 5
    threads: int | None = 2
    isolated: bool = True  # one fresh process per backend (memory is measured only then)
    seed: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "timed": TIMED, "memory_method": MEMORY_METHOD if self.isolated else None}


@dataclass
class BenchRow:
    recipe: str
    case: str
    shape: dict
    inputs: dict
    items: int
    target: str  # backend[/precision], e.g. "ort-cpu/int8"
    backend: str
    precision: str
    file: str
    status: str = "ok"
    reason: str | None = None
    latency_ms: dict | None = None
    throughput: float | None = None
    memory: dict | None = None
    flops: int | None = None
    gflops: float | None = None
    speedup: dict = field(default_factory=dict)
    runner: dict | None = None

    @property
    def p50(self) -> float | None:
        return self.latency_ms["p50"] if self.latency_ms else None


@dataclass
class BenchRun:
    """What ``bench`` timed: the rows of every recipe (skipped and failed backends with their reason), the recipes
    that could not be benchmarked (``errors``: name and one line each) and the files written."""

    header: dict  # schema, created, machine, versions, settings
    rows: list[BenchRow]
    errors: list[dict] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    recipes: dict = field(default_factory=dict, repr=False)  # name -> the recipe benchmarked (for profile_ops)
    out_dir: Path = Path("artifacts")

    @property
    def problem(self) -> str | None:
        """Why this run is not a benchmark, in one line: no backend ran, or one failed (None when neither)."""
        failed = [r for r in self.rows if r.status == "failed"]
        if self.rows and not any(r.status == "ok" for r in self.rows):
            first = (failed or self.rows)[0]
            return f"no backend ran: {first.target}: {first.reason}"
        if failed:
            return f"{len(failed)} of {len(self.rows)} runs failed: {failed[0].target}: {failed[0].reason}"
        return None

    @property
    def passed(self) -> bool:
        return not self.errors and self.problem is None

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 2  # a recipe that could not run, or no benchmark: the user's to fix

    def to_dict(self) -> dict:
        """The bench.json document (what ``deploykit bench --json`` prints): header, results, summary, errors."""
        data = document(self.header, self.rows)
        data["summary"] = summarize(data["results"])
        if self.errors:
            data["errors"] = self.errors
        return data


def bench(recipes, out_dir: str | Path = "artifacts", targets: str | list[Target] | None = None, *,
          shapes: list[str] = (), batches: list[int] = (), settings: BenchSettings | None = None,
          write: bool = True, force: bool = False, on_step=None) -> BenchRun:
    """Time ``targets`` (``"torch,ort-cpu/int8"`` or parsed; None: DEFAULT_TARGETS) on each recipe's artifact in
    ``out_dir`` at the opt shape, or at each ``shapes`` entry (``"H=64,W=64"``) times each of ``batches``.

    Every shape is checked against every recipe before anything runs. A recipe that cannot be benchmarked (no
    artifact) is recorded in ``errors`` and the others go on (one recipe alone raises). ``write``: bench.json and
    plots in each artifact, and ``out_dir/bench.json`` + bench.png for several recipes (``force``: overwrite files
    deploykit did not write)."""
    targets = parse_targets(targets) if targets is None or isinstance(targets, str) else list(targets)
    settings = settings or BenchSettings()
    plans = [(recipe, bench_cases(recipe, list(shapes), list(batches))) for recipe in recipes]  # errors first
    header = report_header(settings)
    run = BenchRun(header, [], recipes={r.name: r for r in recipes}, out_dir=Path(out_dir))
    errors = RecipeErrors(len(plans))
    for recipe, cases in plans:
        rows = errors.attempt(recipe.name, lambda: bench_recipe(recipe, out_dir, targets, cases, settings,
                                                                on_step=on_step))
        if rows is None:
            continue
        run.rows.extend(rows)
        if write:
            run.written += write_recipe_results(Path(out_dir) / recipe.name, header, rows, force)
    if write and len(plans) > 1 and run.rows:
        run.written += write_summary(Path(out_dir), header, run.rows, force)
    run.errors = list(errors)
    return run


def profile_ops(run: BenchRun) -> list[dict]:
    """onnxruntime's per-operator times (op_profile.py) for every onnxruntime row of ``run`` that ran, at the row's
    shape and threads: ``{"recipe", "target", "case", "ops": [OpTime, ...]}`` each, slowest op first."""
    profiles = []
    for row in run.rows:
        if row.status != "ok" or not row.backend.startswith("ort-"):  # torch/TensorRT have their own profilers
            continue
        recipe = run.recipes[row.recipe]
        feed = recipe.make_inputs(ShapeCase(row.case, row.shape))
        artifact = Artifact.open(run.out_dir / row.recipe)
        result = profile_ort(artifact.path(row.file), feed, run.header["settings"]["threads"])
        profiles.append({"recipe": row.recipe, "target": row.target, "case": row.case, "ops": result["ops"]})
    return profiles


def report_header(settings: BenchSettings) -> dict:
    return {"schema": SCHEMA_ID, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(), "versions": versions("numpy", "torch", "onnxruntime"), "settings": settings.to_dict()}


def chunks(iters: int, rounds: int) -> list[int]:
    """``iters`` split into ``rounds`` near-equal parts (no empty part)."""
    rounds = max(1, min(rounds, iters))
    base, extra = divmod(iters, rounds)
    return [base + (i < extra) for i in range(rounds)]


def _flops(artifact: Artifact, recipe, cases) -> dict:
    try:
        model = artifact.reference_model(recipe)
        return {case.key(): count_flops(model, recipe, case) for case in cases}
    except Exception:  # FLOPs are informative only; a module the counter cannot trace gets none
        return {}


def bench_recipe(recipe, out_dir: str | Path, targets: list[Target], cases, settings: BenchSettings,
                 on_step=None) -> list[BenchRow]:
    """Time ``targets`` on ``out_dir/<recipe>/`` at each case; unavailable ones come back as skipped rows."""
    step = on_step or (lambda message: None)
    artifact = Artifact.open(Path(out_dir) / recipe.name)
    artifact.check_recipe(recipe)
    flops = _flops(artifact, recipe, cases)
    rows = []
    for case in cases:
        case_rows = []
        inputs = {name: list(shape) for name, shape in recipe.input_shapes(case).items()}
        workers = {}
        try:
            for target in targets:
                row = BenchRow(recipe.name, case.label, dict(case.values), inputs, items_per_call(recipe, case),
                               target.name, target.backend.name, target.precision, target.file,
                               flops=flops.get(case.key()))
                case_rows.append(row)
                step(f"{recipe.name} {case.label}: checking {target.name}")
                reason = target.backend.unavailable(artifact, target.precision, recipe)
                if reason:
                    row.status, row.reason = "skipped", reason
                    continue
                step(f"{recipe.name} {case.label}: loading {target.name}")
                spec = WorkSpec(target.name, str(artifact.dir), str(recipe.path), dict(case.values), settings.threads,
                                settings.warmup, settings.seed, recipe.trusted)
                try:
                    worker = (ProcessWorker if settings.isolated else InProcessWorker)(spec)
                except WorkerFailed as exc:
                    row.status, row.reason = "failed", f"could not load: {exc}"
                    continue
                workers[target.name] = (worker, row, [])
            _timed_rounds(workers, settings, step, f"{recipe.name} {case.label}")
        finally:
            for worker, _, _ in workers.values():
                worker.kill()
        _add_speedups(case_rows)
        rows.extend(case_rows)
    return rows


def _timed_rounds(workers: dict, settings: BenchSettings, step, where: str) -> None:
    """Each round times a chunk of calls on every backend in turn (see worker.py: why rounds)."""
    parts = chunks(settings.iters, settings.rounds)
    for index, count in enumerate(parts):
        step(f"{where}: round {index + 1}/{len(parts)} ({', '.join(workers)})")
        for name, (worker, row, samples) in list(workers.items()):
            if row.status != "ok":
                continue
            time.sleep(SETTLE_SECONDS)
            try:
                samples.extend(worker.run(count))
            except WorkerFailed as exc:
                row.status, row.reason = "failed", f"failed while running: {exc}"
    for worker, row, samples in workers.values():
        if row.status != "ok":
            continue
        try:
            row.memory = worker.stop()
        except WorkerFailed:
            row.memory = None  # the timings are complete; only the memory figure is lost
        stats = LatencyStats.from_seconds(samples, row.items)
        row.latency_ms, row.throughput, row.runner = stats.latency_dict(), stats.throughput, worker.info
        if row.flops:
            row.gflops = row.flops / (stats.p50_ms / 1e3) / 1e9


def _add_speedups(rows: list[BenchRow]) -> None:
    baselines = {r.target: r.p50 for r in rows if r.status == "ok" and r.target in SPEEDUP_BASELINES}
    for row in rows:
        if row.status == "ok":
            row.speedup = {name: speedup(p50, row.p50) for name, p50 in baselines.items()}
