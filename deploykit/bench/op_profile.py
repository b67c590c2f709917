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


@dataclass(frozen=True)
class OpTime:
    op_type: str
    nodes: int
    us: float  # sum over its nodes of each node's fastest run
    share: float  # of the sum over all nodes


def profile_ort(model: str | Path | bytes, feed: dict, threads: int | None = 2, runs: int = 50,
                optimization: str = "all", prepare_qdq: bool = False) -> dict:
    """Run ``runs`` times with onnxruntime's profiler on; per-op-type times and the run times (µs).

    ``prepare_qdq``: load a Q/DQ model as the ort-int8 backend does (runners/ort_qdq.py).
    """
    import onnxruntime as ort

    from ..runners.ort_runner import session_options

    if prepare_qdq:
        import onnx

        from ..runners.ort_qdq import prepare_qdq_for_ort

        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
        model = prepare_qdq_for_ort(proto)[0].SerializeToString()

    options = session_options(threads, optimization)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="deploykit-prof-") as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        source = model if isinstance(model, bytes) else str(model)
        session = ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            session.run(None, feed)
        trace = json.loads(Path(session.end_profiling()).read_text())
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
