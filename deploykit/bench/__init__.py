"""``deploykit bench``: latency (p50/p90/p99), throughput and peak memory of every backend of an artifact.

    from deploykit.bench import BenchSettings, bench_recipe, parse_targets, bench_cases
    rows = bench_recipe(recipe, "artifacts", parse_targets("torch,ort-cpu"), bench_cases(recipe), BenchSettings())

Backends run in fresh "spawn" processes: a script calling ``bench_recipe`` needs the usual
``if __name__ == "__main__":`` guard (multiprocessing re-imports the main module in each worker).

Targets (a backend at a precision) come from the one backend table (deploykit.backends).
Modules: cases (shapes), worker (one process per backend,
timed in interleaved rounds), measure (timing loop, peak RSS), stats (percentiles, throughput,
geomean), flops (FLOP count, GEMM peak), profile (onnxruntime per-operator time), plot, schema
(the JSON format), results (files), machine (what it ran on).
"""

from .cases import bench_cases, parse_batches
from .run import DEFAULT_TARGETS, BenchRow, BenchSettings, bench_recipe, parse_targets, report_header
from .schema import RESULTS_SCHEMA, SCHEMA_ID
from .stats import LatencyStats, geomean, speedup, summarize

__all__ = [
           "DEFAULT_TARGETS",
           "RESULTS_SCHEMA",
           "SCHEMA_ID",
           "BenchRow",
           "BenchSettings",
           "LatencyStats",
           "bench_cases",
           "bench_recipe",
           "geomean",
           "parse_targets",
           "parse_batches",
           "report_header",
           "speedup",
           "summarize",
]
