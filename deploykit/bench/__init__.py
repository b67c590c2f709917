"""``deploykit bench``: latency (p50/p90/p99), throughput and peak memory of every backend of an artifact.

    from deploykit.bench import BenchSettings, bench
    run = bench([recipe], "artifacts", "torch,ort-cpu", settings=BenchSettings(iters=100))   # -> BenchRun
    run.rows, run.to_dict()      # the result rows; the bench.json document (what --json prints)

``bench`` is the call under the command (several recipes, files written); ``bench_recipe`` times one artifact
and returns its rows. Backends run in fresh "spawn" processes: a script calling either needs the usual
``if __name__ == "__main__":`` guard (multiprocessing re-imports the main module in each worker).

Targets (a backend at a precision) come from the one backend table (deploykit.backends).
Modules: cases (shapes), worker (one process per backend,
timed in interleaved rounds), measure (timing loop, peak RSS), stats (percentiles, throughput,
geomean), flops (FLOP count, GEMM peak), profile (onnxruntime per-operator time), plot, schema
(the JSON format), results (files), machine (what it ran on).
"""

from .cases import bench_cases, parse_batches
from .run import (DEFAULT_TARGETS, BenchRow, BenchRun, BenchSettings, bench, bench_recipe, parse_targets, profile_ops,
                  report_header)
from .schema import RESULTS_SCHEMA, SCHEMA_ID
from .stats import LatencyStats, geomean, speedup, summarize

__all__ = [
           "DEFAULT_TARGETS",
           "RESULTS_SCHEMA",
           "SCHEMA_ID",
           "BenchRow",
           "BenchRun",
           "BenchSettings",
           "LatencyStats",
           "bench",
           "bench_cases",
           "bench_recipe",
           "geomean",
           "parse_targets",
           "parse_batches",
           "profile_ops",
           "report_header",
           "speedup",
           "summarize",
]
