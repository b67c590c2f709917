"""The timing loop and the peak-memory reading.

Timing: ``time.perf_counter`` around each call, after untimed warm-up calls (first calls pay for lazy
allocation, kernel selection and oneDNN primitive creation).

Peak memory: the kernel's resident-set high-water mark of a fresh process per backend (worker.py),
reset once imports are done and the inputs exist, read after the timed runs. So the figure is what
the backend itself added at its peak: weights, session/engine, arena, activations, outputs.

* On Linux it is ``VmHWM`` from /proc/self/status, reset with ``echo 5 > /proc/self/clear_refs``.
  Not ``resource.getrusage().ru_maxrss``: for a spawned child that is at least the *parent's* peak
  (Linux copies the pre-exec high-water mark into the child's rusage at exec; measured here: a child
  of an 827 MB parent reported ru_maxrss 827 MB and VmHWM 29 MB), and it cannot be reset.
* Elsewhere, ``ru_maxrss`` of the fresh process minus its value at the baseline (no reset exists).
* Not ``tracemalloc``: it only sees Python-allocator memory, not onnxruntime's arena, oneDNN
  buffers or torch tensors. Not psutil sampling: a sampling thread competes for the cores being
  timed and misses short peaks. The high-water mark is exact and free; its limit is that it counts
  resident pages only (memory reserved but never touched is not counted).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def time_calls(call: Callable[[], object], iters: int, warmup: int = 0) -> list[float]:
    """``warmup`` untimed calls, then ``iters`` timed ones; seconds per call."""
    for _ in range(warmup):
        call()
    samples = []
    clock = time.perf_counter
    for _ in range(iters):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakMemory:
    """``start()`` at the baseline, ``read()`` later: {"peak_rss_mb", "delta_rss_mb", "method"}."""

    def __init__(self):
        self.method = None
        self.baseline = 0

    def start(self) -> None:
        try:
            _CLEAR_REFS.write_text("5")  # reset VmHWM to the current RSS
            self.baseline = _status_kib("VmRSS")
            self.method = "VmHWM" if self.baseline is not None else None
        except OSError:
            self.method = None
        if self.method is None:
            self.method = "ru_maxrss"
            self.baseline = _ru_maxrss_kib()

    def read(self) -> dict:
        peak = _status_kib("VmHWM") if self.method == "VmHWM" else _ru_maxrss_kib()
        return {"peak_rss_mb": peak / 1024, "delta_rss_mb": (peak - self.baseline) / 1024, "method": self.method}


def _ru_maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024 if sys.platform == "darwin" else peak)  # macOS reports bytes, Linux KiB
