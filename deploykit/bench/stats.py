"""Latency statistics from timed samples: percentiles, throughput, geometric mean, speedup.

numpy's percentile (linear interpolation between order statistics, NumPy's default) does the work;
these helpers only fix the units (samples in seconds, reports in milliseconds) and the definitions:

* ``p50/p90/p99``: percentiles of the per-call latencies.
* ``throughput``: items per second over the timed loop, ``items_per_call * n / sum(samples)``
  (= items / mean latency): the rate a caller issuing back-to-back calls of that batch sees.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    throughput: float  # items per second

    @classmethod
    def from_seconds(cls, samples, items_per_call: int = 1) -> LatencyStats:
        seconds = np.asarray(samples, dtype=np.float64)
        if seconds.ndim != 1 or seconds.size == 0:
            raise ValueError("need a non-empty 1-D list of latencies")
        if (seconds <= 0).any():
            raise ValueError("latencies must be positive")
        ms = seconds * 1e3
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(n=int(ms.size), mean_ms=float(ms.mean()), std_ms=float(ms.std()), min_ms=float(ms.min()),
                   p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), max_ms=float(ms.max()),
                   throughput=float(items_per_call * ms.size / seconds.sum()))

    def latency_dict(self) -> dict:
        """The JSON ``latency_ms`` object (see schema.py)."""
        data = asdict(self)
        return {key[:-3]: data[key] for key in data if key.endswith("_ms")}


def geomean(values) -> float:
    """Geometric mean of positive numbers (the mean of speedups that treats 2x and 0.5x symmetrically)."""
    values = [float(v) for v in values]
    if not values or any(v <= 0 or not math.isfinite(v) for v in values):
        raise ValueError("geomean needs a non-empty list of positive, finite numbers")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def speedup(baseline_ms: float, candidate_ms: float) -> float:
    """How many times faster the candidate is (> 1: faster, < 1: slower)."""
    if baseline_ms <= 0 or candidate_ms <= 0:
        raise ValueError("latencies must be positive")
    return baseline_ms / candidate_ms


def summarize(rows: list[dict]) -> dict:
    """Geometric-mean speedup of each target over torch and over ort-cpu, across recipes at their opt shape."""
    summary = {}
    for baseline in ("torch", "ort-cpu"):
        ratios: dict[str, list[float]] = {}
        for row in rows:
            if row["status"] == "ok" and row["case"] == "opt" and baseline in row["speedup"] and row["target"] != baseline:
                ratios.setdefault(row["target"], []).append(row["speedup"][baseline])
        summary[f"geomean_speedup_vs_{baseline}"] = {t: {"geomean": geomean(v), "recipes": len(v), "min": min(v)}
                                                     for t, v in ratios.items()}
    return summary
