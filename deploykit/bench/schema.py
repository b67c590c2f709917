"""The bench results file (``bench.json``, ``deploykit bench --json``): a stable, versioned schema.

Schema ``deploykit.bench/2`` (2: rows name their target and use the one backend table's names).
Fields are only ever added within a version; renaming or removing one makes the next version.

Top level::

    schema      "deploykit.bench/2"
    created     ISO-8601 UTC time
    machine     cpu, logical_cpus, physical_cores, threads_per_core, cpu_flags, hypervisor,
                memory_gib, os, load_average_1m (at the start; the machine's other load)
    versions    deploykit, python, numpy, torch, onnxruntime
    settings    warmup, iters, rounds, threads, isolated, timed, memory_method
    results     one row per recipe x shape case x target (below)
    summary     (``deploykit bench`` output) geomean_speedup_vs_torch / _vs_ort-cpu: {target: {geomean, recipes, min}}
                over the recipes' opt-shape rows
    errors      (only when some recipe could not run) [{name, error}]
    files       (the top-level bench.json of a multi-recipe run) {plot file: sha256}, what deploykit wrote there

A row::

    recipe, case ("opt" or "B=4 H=64 W=64"), shape {symbol: int}, inputs {name: [dims]}, items (batch)
    target      backend[/precision], e.g. torch, ort-cpu, ort-cpu/int8, trt/fp16
    backend     torch | ort-cpu | ort-cuda | ort-trt | trt (deploykit.backends)
    precision   fp32 | fp16 | int8
    file        the artifact file the backend ran (weights.pt, model.onnx, model.int8.ort.onnx, model.fp32.plan...)
    status      "ok" | "skipped" (not available here: reason says why) | "failed" (it loaded or ran and broke)
    reason      null when ok, else one line
    latency_ms  {mean, std, min, p50, p90, p99, max} or null
    throughput  items per second over the timed loop (items * n / total time) or null
    memory      {peak_rss_mb, delta_rss_mb, method} of the backend's own process: peak = RSS high-water
                mark, delta = peak - RSS once imports were done and inputs made (what the backend added);
                method "VmHWM" (Linux, reset at the baseline) or "ru_maxrss"; null when not isolated or not run
    flops       FLOPs of the PyTorch module at this shape (torch FlopCounterMode: matmul/conv) or null
    gflops      flops / p50 latency, in GFLOP/s, or null
    speedup     {"torch": p50(torch) / p50(this), "ort-cpu": p50(ort-cpu) / p50(this)} for those that ran
    runner      what really ran (runner.describe(): versions, providers, threads...)
"""

from __future__ import annotations

SCHEMA_ID = "deploykit.bench/2"

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_LATENCY = {
    "type": "object",
    "required": ["mean", "std", "min", "p50", "p90", "p99", "max"],
    "properties": {k: {"type": "number", "minimum": 0} for k in ("mean", "std", "min", "p50", "p90", "p99", "max")},
}
ROW_SCHEMA = {
    "type": "object",
    "required": ["recipe", "case", "shape", "inputs", "items", "target", "backend", "precision", "file", "status",
                 "reason", "latency_ms", "throughput", "memory", "flops", "gflops", "speedup", "runner"],
    "properties": {
        "recipe": {"type": "string"},
        "case": {"type": "string"},
        "shape": {"type": "object", "additionalProperties": {"type": "integer"}},
        "inputs": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
        "items": {"type": "integer", "minimum": 1},
        "target": {"type": "string", "pattern": "^[a-z-]+(/(fp16|int8))?$"},
        "backend": {"enum": ["torch", "ort-cpu", "ort-cuda", "ort-trt", "trt"]},
        "precision": {"enum": ["fp32", "fp16", "int8"]},
        "file": {"type": "string"},
        "status": {"enum": ["ok", "skipped", "failed"]},
        "reason": {"type": ["string", "null"]},
        "latency_ms": {"oneOf": [_LATENCY, {"type": "null"}]},
        "throughput": _NUMBER_OR_NULL,
        "memory": {"oneOf": [{"type": "object", "required": ["peak_rss_mb", "delta_rss_mb", "method"],
                              "properties": {"peak_rss_mb": {"type": "number", "minimum": 0},
                                             "delta_rss_mb": {"type": "number"},
                                             "method": {"enum": ["VmHWM", "ru_maxrss"]}}},
                             {"type": "null"}]},
        "flops": {"type": ["integer", "null"]},
        "gflops": _NUMBER_OR_NULL,
        "speedup": {"type": "object", "additionalProperties": {"type": "number"}},
        "runner": {"type": ["object", "null"]},
    },
    # ok rows have numbers, other rows say why
    "allOf": [
        {"if": {"properties": {"status": {"const": "ok"}}},
         "then": {"properties": {"latency_ms": _LATENCY, "reason": {"type": "null"}}},
         "else": {"properties": {"reason": {"type": "string", "minLength": 1}, "latency_ms": {"type": "null"}}}},
    ],
}
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "type": "object",
    "required": ["schema", "created", "machine", "versions", "settings", "results"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "machine": {"type": "object", "required": ["cpu", "logical_cpus", "memory_gib"]},
        "versions": {"type": "object", "required": ["deploykit", "torch", "onnxruntime"]},
        "settings": {"type": "object", "required": ["warmup", "iters", "rounds", "threads", "isolated"]},
        "results": {"type": "array", "items": ROW_SCHEMA},
    },
}
