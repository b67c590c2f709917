"""Where onnxruntime spends its time: per-operator kernel times from its own profiler.

``SessionOptions.enable_profiling`` makes onnxruntime write a Chrome-trace JSON with one event per
node per run; this reads it back and keeps, for each node, the minimum over the runs (the least
disturbed by other load on the machine), then sums per operator type.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..runners.ort_runner import ort_session


@dataclass(frozen=True)
class OpTime:
    op_type: str
    nodes: int
    us: float  # sum over its nodes of each node's fastest run
    share: float  # of the sum over all nodes


def profile_ort(model: str | Path | bytes, feed: dict, threads: int | None = 2, runs: int = 50,
                optimization: str = "all") -> dict:
    """Run ``runs`` times with onnxruntime's profiler on; per-op-type times and the run times (µs)."""
    return profile_interleaved({"model": model}, feed, threads, runs, rounds=1, optimization=optimization)["model"]


def profile_interleaved(models: dict, feed: dict, threads: int | None = 2, runs: int = 30, rounds: int = 6,
                        optimization: str = "all") -> dict[str, dict]:
    """``profile_ort`` for several models at once, taking turns (``rounds`` turns of ``runs / rounds``
    runs each), so a burst of other load lands on all of them alike; ``{name: profile}``."""
    with tempfile.TemporaryDirectory(prefix="deploykit-prof-") as tmp:
        sessions = {}
        for index, (name, model) in enumerate(models.items()):
            sessions[name] = ort_session(model, threads=threads, optimization=optimization,
                                         profile_prefix=os.path.join(tmp, f"ort{index}"))
        per_turn = max(1, runs // max(1, rounds))
        for _ in range(max(1, rounds)):
            for session in sessions.values():
                for _ in range(per_turn):
                    session.run(None, feed)
        return {name: _summarize(json.loads(Path(s.end_profiling()).read_text())) for name, s in sessions.items()}


def _summarize(trace: list) -> dict:
    per_node: dict[tuple, list[float]] = defaultdict(list)
    run_times = []
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_node[(event["name"][: -len("_kernel_time")], event["args"].get("op_name", "?"))].append(event["dur"])
        elif event.get("cat") == "Session" and event.get("name") == "model_run":
            run_times.append(event["dur"])
    per_op: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for (_, op_type), durations in per_node.items():
        per_op[op_type][0] += 1
        per_op[op_type][1] += min(durations)
    total = sum(us for _, us in per_op.values()) or 1.0
    ops = sorted((OpTime(op, n, us, us / total) for op, (n, us) in per_op.items()), key=lambda o: -o.us)
    nodes = sorted(((name, op, min(d)) for (name, op), d in per_node.items()), key=lambda x: -x[2])
    return {"ops": ops, "nodes": nodes, "sum_node_min_us": total,
            "run_min_us": min(run_times) if run_times else None,
            "run_median_us": sorted(run_times)[len(run_times) // 2] if run_times else None}
