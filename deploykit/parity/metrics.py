"""Error statistics between a runner's outputs and the reference, and the pass/fail rule.

Kept apart from the runners (Polygraphy's comparator habit): the same metrics judge ONNX FP32,
FP16, INT8 and TensorRT outputs; only the tolerance changes with the precision.

The noise floor: a deep network's FP32 output carries PyTorch's own rounding (inception_v3: 3.6e-3
max abs at its opt shape), and a fixed atol would refuse an exact export of it. When the reference
also ran in float64, an FP32 candidate whose error against float64 is within FLOOR_MULTIPLE times
PyTorch's own FP32 error against float64 is rounding, not an export bug; a real bug is orders of
magnitude above that floor.

Why 16: two correct FP32 implementations are two draws of rounding error, and on an ill-conditioned
network their maxima differ by several x (timm repvgg_b0, onnxruntime against PyTorch, both against
float64: 0.2x to 5.1x across shapes; 55 other timm networks at most 1.9x). A real export bug (a wrong
op, a baked size) is off by a share of the output, orders of magnitude above 16x the floor.

Cosine and SNR get the same floor, measured against float64 too: on an ill-conditioned network PyTorch's own FP32
output can miss a cosine of 0.99999 against its float64 self (timm levit_128s on the benchmark's weights: its
FP32 error is 1.4% of the output range at B=1, where onnxruntime's cosine against it is 0.999637), and then no FP32
implementation can meet it against PyTorch's FP32. A shortfall is rounding when the candidate's distance from
float64 is within FLOOR_MULTIPLE times PyTorch's own in 1 - cosine, and within 10*log10(FLOOR_MULTIPLE) dB of its
SNR (both 4x in error amplitude, stricter than the max-abs rule).

The floor excuses only rounding: when PyTorch's own FP32 error is itself a sizeable share of the output's range
(over MAX_FLOOR_SHARE), the FP32 result is unstable (or the two runs differ for another reason than rounding) and
nothing is excused: the failure says so. The largest share measured on a correct network is levit_128s's 1.4%.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

_TINY = 1e-12
FLOOR_MULTIPLE = 16.0  # ONNX's FP32 error may be this many times PyTorch's own, against float64
NEAR_FLOOR = 100.0  # a failure within this many times the floor is rounding in an ill-conditioned network
MAX_FLOOR_SHARE = 0.05  # a floor above this share of the float64 output's range excuses nothing


def near_floor(outputs) -> float | None:
    """The worst failing output's error as a multiple of PyTorch's own FP32 error, when every failing
    output is within NEAR_FLOOR of it (rounding, not a structural bug); else None."""
    ratios = [m.error_vs_float64 / m.floor if m.floor else float("inf") for m in outputs if not m.passed]
    worst = max(ratios, default=float("inf"))
    return worst if worst <= NEAR_FLOOR else None


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
    floor: float | None = None  # PyTorch's own FP32 error: max |torch fp32 - torch fp64|
    error_vs_float64: float | None = None  # max |candidate - torch fp64|

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
    if noise == 0.0:  # only an exact match has an infinite SNR; a tiny error is a large finite one
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


def compare_output(name: str, actual: np.ndarray, expected: np.ndarray, tolerance,
                   expected64: np.ndarray | None = None) -> OutputMetrics:
    """Judge one output against the reference under a recipe Tolerance (and the noise floor when
    ``expected64``, the reference run in float64, is given)."""
    failures: list[str] = []
    if tuple(actual.shape) != tuple(expected.shape):
        nan = float("nan")
        return OutputMetrics(name, list(actual.shape), nan, nan, nan, nan, nan, nan, False,
                             [f"shape {tuple(actual.shape)} != reference {tuple(expected.shape)}"])
    if not np.all(np.isfinite(actual)):
        failures.append(f"{int(np.size(actual) - np.isfinite(actual).sum())} non-finite values")
    stats = error_stats(actual, expected)
    floor = error64 = None
    unstable = ""
    if expected64 is not None and expected64.shape == expected.shape:
        truth = expected64.astype(np.float64)
        floor = float(np.abs(expected.astype(np.float64) - truth).max(initial=0.0))
        error64 = float(np.abs(actual.astype(np.float64) - truth).max(initial=0.0))
        spread = float(np.ptp(truth)) if truth.size else 0.0
        if not floor <= MAX_FLOOR_SHARE * spread:  # not rounding: excuse nothing, and say why
            unstable = (f"; PyTorch's own FP32 output is {floor / spread if spread else float('inf'):.0%} of the "
                        "output range away from float64: unstable, not rounding")
            floor = None
    if tolerance.atol is not None:
        limit = tolerance.atol + (tolerance.rtol or 0.0) * np.abs(expected.astype(np.float64))
        bad = np.abs(actual.astype(np.float64) - expected.astype(np.float64)) > limit
        rounding = floor is not None and error64 <= FLOOR_MULTIPLE * floor
        if bad.any() and not rounding:
            beyond = f" and {error64 / floor:.1f}x PyTorch's own FP32 error" if floor else ""
            failures.append(
                f"{int(bad.sum())}/{bad.size} values beyond atol={tolerance.atol:g} rtol={tolerance.rtol or 0:g} "
                f"(max abs {stats['max_abs']:.3g}{beyond}){unstable}"
            )
    cosine_short = tolerance.cosine_min is not None and stats["cosine"] < tolerance.cosine_min
    snr_short = tolerance.snr_min_db is not None and stats["snr_db"] < tolerance.snr_min_db
    candidate64 = own64 = None  # distances from float64, the candidate's and PyTorch FP32's own: for a shortfall
    if floor is not None and (cosine_short or snr_short):
        candidate64, own64 = error_stats(actual, truth), error_stats(expected, truth)
    if cosine_short and not (own64 is not None
                             and 1 - candidate64["cosine"] <= FLOOR_MULTIPLE * (1 - own64["cosine"])):
        own = f" (PyTorch's own FP32 against float64: {own64['cosine']:.6f})" if own64 else ""
        failures.append(f"cosine {stats['cosine']:.6f} < {tolerance.cosine_min}{own}")
    if snr_short and not (own64 is not None
                          and candidate64["snr_db"] >= own64["snr_db"] - 10 * np.log10(FLOOR_MULTIPLE)):
        own = f" (PyTorch's own FP32 against float64: {own64['snr_db']:.1f} dB)" if own64 else ""
        failures.append(f"SNR {stats['snr_db']:.1f} dB < {tolerance.snr_min_db} dB{own}")
    return OutputMetrics(name, list(actual.shape), **stats, passed=not failures, failures=failures,
                         floor=floor, error_vs_float64=error64)


def compare_outputs(actual: dict, expected: dict, tolerance, expected64: dict | None = None) -> list[OutputMetrics]:
    results = []
    for name, ref in expected.items():
        if name not in actual:
            nan = float("nan")
            results.append(OutputMetrics(name, [], nan, nan, nan, nan, nan, nan, False, ["output missing"]))
            continue
        results.append(compare_output(name, actual[name], ref, tolerance, (expected64 or {}).get(name)))
    return results
