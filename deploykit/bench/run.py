"""``bench_recipe``: every requested backend of one artifact, timed at each shape case, as result rows."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..artifact import Artifact
from ..backends import Target, parse_targets as _parse_targets
from .cases import items_per_call
from .flops import count_flops
from ..environment import versions
from .machine import machine_info
from .schema import SCHEMA_ID
from .stats import LatencyStats, speedup
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
