"""In-process interleaved timing of several callables: the comparison calibrate's INT8 search and
the benchmark ablations make (``deploykit bench`` itself uses one process per backend, worker.py).

Each round gives every callable one turn of a few calls, after a pause: onnxruntime's worker
threads spin-wait for a while after a run, and a neighbour's spinning threads would be timed as this
callable's loss (see run.py SETTLE_SECONDS). Taking turns makes a burst of other load on the shared
machine hit every callable alike; the p50 of each is compared, never one run against another run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .run import SETTLE_SECONDS


def calls_per_turn(seconds_per_call: float, turn_seconds: float = 0.02, lo: int = 3, hi: int = 50) -> int:
    """Enough calls for a ~20 ms turn (short calls need many per turn to outweigh the pause)."""
    return int(min(hi, max(lo, turn_seconds / max(seconds_per_call, 1e-6))))


def interleaved(calls: dict[str, Callable[[], object]], rounds: int = 8, per_turn: int | None = None,
                warmup: int = 5, settle: float = SETTLE_SECONDS) -> dict[str, dict]:
    """``{name: {"p50": ms, "min": ms, "n": calls}}`` from ``rounds`` turns each (``per_turn`` calls a turn;
    default: from the slowest warm-up call, so every callable gets the same count)."""
    slowest = 0.0
    for call in calls.values():
        for _ in range(max(warmup - 1, 0)):
            call()
        start = time.perf_counter()
        call()
        slowest = max(slowest, time.perf_counter() - start)
    count = per_turn or calls_per_turn(slowest)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    clock = time.perf_counter
    for _ in range(rounds):
        for name, call in calls.items():
            time.sleep(settle)
            for _ in range(count):
                start = clock()
                call()
                samples[name].append(clock() - start)
    return {name: {"p50": float(np.median(s)) * 1e3, "min": float(np.min(s)) * 1e3, "n": len(s)}
            for name, s in samples.items()}
