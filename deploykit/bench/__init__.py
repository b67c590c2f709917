"""``deploykit bench``: latency (p50/p90/p99), throughput and peak memory of every backend of an artifact.

    from deploykit.bench import BenchSettings, bench_recipe, parse_backends, bench_cases
    rows = bench_recipe(recipe, "artifacts", parse_backends("torch,ort"), bench_cases(recipe), BenchSettings())

Backends run in fresh "spawn" processes: a script calling ``bench_recipe`` needs the usual
``if __name__ == "__main__":`` guard (multiprocessing re-imports the main module in each worker).

Modules: backends (names -> runners, availability), cases (shapes), worker (one process per backend,
timed in interleaved rounds), measure (timing loop, peak RSS), stats (percentiles, throughput,
geomean), flops (FLOP count, GEMM peak), profile (onnxruntime per-operator time), plot, schema
(the JSON format), results (files), machine (what it ran on).
"""

from .backends import BACKENDS, DEFAULT_BACKENDS, Backend, parse_backends
from .cases import bench_cases, parse_batches
from .run import BenchRow, BenchSettings, bench_recipe, report_header
from .schema import RESULTS_SCHEMA, SCHEMA_ID
from .stats import LatencyStats, geomean, speedup

__all__ = [
           "BACKENDS",
           "DEFAULT_BACKENDS",
           "RESULTS_SCHEMA",
           "SCHEMA_ID",
           "Backend",
           "BenchRow",
           "BenchSettings",
           "LatencyStats",
           "bench_cases",
           "bench_recipe",
           "geomean",
           "parse_backends",
           "parse_batches",
           "report_header",
           "speedup",
]
