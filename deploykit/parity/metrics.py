"""Error statistics between a runner's outputs and the reference, and the pass/fail rule.

Kept apart from the runners (Polygraphy's comparator habit): the same metrics judge ONNX FP32,
FP16, INT8 and TensorRT outputs; only the tolerance changes with the precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

_TINY = 1e-12


@dataclass
class OutputMetrics:
    name: str
    shape: list[int]
    max_abs: float
    max_rel: float
    mean_abs: float
    p99_abs: float
    cosine: float
    snr_db: float
    passed: bool
    failures: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def error_stats(actual: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """max/mean/p99 absolute error, max relative error, cosine similarity and SNR (dB), in float64."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    diff = np.abs(a - e)
    signal = float(np.sum(e * e))
    noise = float(np.sum((a - e) ** 2))
    norm = float(np.linalg.norm(a) * np.linalg.norm(e))
    if norm > _TINY:
        cosine = float(np.dot(a, e) / norm)
    else:  # both (near) zero: identical zero vectors are perfectly similar
        cosine = 1.0 if noise <= _TINY else 0.0
    if noise <= _TINY * max(signal, 1.0):
        snr = float("inf")
    else:
        snr = 10.0 * np.log10(max(signal, _TINY) / noise)
    return {
        "max_abs": float(diff.max(initial=0.0)),
        "max_rel": float((diff / np.maximum(np.abs(e), 1e-6)).max(initial=0.0)),
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "p99_abs": float(np.percentile(diff, 99)) if diff.size else 0.0,
        "cosine": cosine,
        "snr_db": snr,
    }


def compare_output(name: str, actual: np.ndarray, expected: np.ndarray, tolerance) -> OutputMetrics:
    """Judge one output against the reference under a recipe Tolerance."""
    failures: list[str] = []
    if tuple(actual.shape) != tuple(expected.shape):
        nan = float("nan")
        return OutputMetrics(name, list(actual.shape), nan, nan, nan, nan, nan, nan, False,
                             [f"shape {tuple(actual.shape)} != reference {tuple(expected.shape)}"])
    if not np.all(np.isfinite(actual)):
        failures.append(f"{int(np.size(actual) - np.isfinite(actual).sum())} non-finite values")
    stats = error_stats(actual, expected)
    if tolerance.atol is not None:
        limit = tolerance.atol + (tolerance.rtol or 0.0) * np.abs(expected.astype(np.float64))
        bad = np.abs(actual.astype(np.float64) - expected.astype(np.float64)) > limit
        if bad.any():
            failures.append(
                f"{int(bad.sum())}/{bad.size} values beyond atol={tolerance.atol:g} rtol={tolerance.rtol or 0:g} "
                f"(max abs {stats['max_abs']:.3g})"
            )
    if tolerance.cosine_min is not None and stats["cosine"] < tolerance.cosine_min:
        failures.append(f"cosine {stats['cosine']:.6f} < {tolerance.cosine_min}")
    if tolerance.snr_min_db is not None and stats["snr_db"] < tolerance.snr_min_db:
        failures.append(f"SNR {stats['snr_db']:.1f} dB < {tolerance.snr_min_db} dB")
    return OutputMetrics(name, list(actual.shape), **stats, passed=not failures, failures=failures)


def compare_outputs(actual: dict, expected: dict, tolerance) -> list[OutputMetrics]:
    results = []
    for name, ref in expected.items():
        if name not in actual:
            nan = float("nan")
            results.append(OutputMetrics(name, [], nan, nan, nan, nan, nan, nan, False, ["output missing"]))
            continue
        results.append(compare_output(name, actual[name], ref, tolerance))
    return results
