"""The one parity engine (Polygraphy's Comparator habit): run a reference and a candidate on the same
inputs, then judge each output with a pluggable compare (by default ``metrics.compare_outputs`` under a
Tolerance). Every parity loop in deploykit calls it: the rewrite proof and the export checks, ``verify``,
the post-build TensorRT check and the calibration sanity check.

The reference is a runner, or its outputs recorded once with ``record`` (the export checks compare
several candidates against one PyTorch run). A candidate that fails at an input is a result (the case
fails with the error); a reference that fails is the user's module failing: one UserCodeError line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import first_line
from ..guard import at_declared_shape, user_code
from ..tensors.shapes import describe_values
from .metrics import OutputMetrics, compare_outputs

HISTOGRAM_SAMPLES = 100_000  # abs errors kept per output and case, for reports' histograms


@dataclass(frozen=True)
class ParityInput:
    label: str
    shape: dict  # the symbol values, for reports
    feed: dict

    def describe(self) -> str:
        return describe_values(self.shape) or self.label


def inputs_for(recipe, cases, seed: int = 0) -> list[ParityInput]:
    """Seeded inputs from the recipe's distributions at each ShapeCase."""
    return [ParityInput(case.label, dict(case.values), recipe.make_inputs(case, seed)) for case in cases]


@dataclass
class Recorded:
    """The reference's outputs at one input, with its time; ``outputs64`` runs it in float64 on first use.

    float64 is computed only when an FP32 comparison needs the noise floor (it failed the plain atol):
    CPU float64 kernels are up to 12x slower than float32 (mdaf's strip convolutions)."""

    outputs: dict | None
    error: str | None = None
    ms: float | None = None
    float64: object = field(default=None, repr=False)  # () -> outputs in float64, or None when unavailable
    _outputs64: dict | None = field(default=None, repr=False)

    @property
    def outputs64(self) -> dict | None:
        if self._outputs64 is None and self.float64 is not None:
            self._outputs64, self.float64 = self.float64(), None
        return self._outputs64


@dataclass
class CaseResult:
    label: str
    shape: dict
    passed: bool
    outputs: list[OutputMetrics]
    error: str | None = None
    backend_ms: float | None = None
    reference_ms: float | None = None

    def describe(self) -> str:
        return describe_values(self.shape) or self.label

    @property
    def max_abs(self) -> float:
        return max((m.max_abs for m in self.outputs), default=float("nan"))

    @property
    def min_cosine(self) -> float:
        return min((m.cosine for m in self.outputs), default=float("nan"))

    @property
    def failures(self) -> list[str]:
        return ([f"error: {self.error}"] if self.error else []) + \
            [f"{m.name}: {f}" for m in self.outputs for f in m.failures]

    def to_dict(self) -> dict:
        return {**asdict(self), "outputs": [m.as_dict() for m in self.outputs]}


@dataclass
class ParityResult:
    cases: list[CaseResult]
    errors: dict = field(default_factory=dict, repr=False)  # output -> sampled abs errors (when asked)
    spreads: dict = field(default_factory=dict, repr=False)  # (case, output) -> reference max - min

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def first_failure(self) -> CaseResult | None:
        return next((c for c in self.cases if not c.passed), None)


def _ms(runner) -> float | None:
    seconds = getattr(runner, "last_inference_time", None)
    return seconds * 1e3 if seconds is not None else None


def record(runner, inputs: list[ParityInput], what: str = "the PyTorch module", floor: bool = True) -> list[Recorded]:
    """The reference's outputs at every input, computed once (``floor``: float64 too, when a comparison
    needs it and the runner can); its failure is the user's code failing."""
    records = []
    for item in inputs:
        with at_declared_shape(f"{what} at {item.describe()}") if item.shape else user_code(what):
            outputs = runner.infer(item.feed)
        float64 = (lambda feed=item.feed: runner.infer_float64(feed)) if floor and hasattr(runner, "infer_float64") else None
        records.append(Recorded(outputs, ms=_ms(runner), float64=float64))
    return records


def compare_runners(reference, candidate, inputs: list[ParityInput], tolerance, *, compare=compare_outputs,
                    on_case=None, keep_errors: bool = False, stop_at_failure: bool = False,
                    reference_name: str = "the PyTorch module", floor: bool = True) -> ParityResult:
    """``candidate`` against ``reference`` (an active runner, or ``record``'s list) at every input;
    ``floor``: where the plain tolerance fails, run the reference in float64 too, so FP32 rounding of a
    deep network (its error within a small multiple of PyTorch's own) is not an error."""
    recorded = reference if isinstance(reference, list) else None
    results: list[CaseResult] = []
    errors: dict[str, list[np.ndarray]] = {}
    spreads: dict[tuple, float] = {}
    for index, item in enumerate(inputs):
        if on_case:
            on_case(item)
        expected = recorded[index] if recorded is not None else record(reference, [item], reference_name, floor)[0]
        try:
            actual = candidate.infer(item.feed)
        except Exception as exc:  # a candidate failing at a shape is a result, not a crash
            results.append(CaseResult(item.label, item.shape, False, [], error=first_line(exc),
                                      reference_ms=expected.ms))
            if stop_at_failure:
                break
            continue
        metrics = compare(actual, expected.outputs, tolerance)
        if not all(m.passed for m in metrics) and expected.outputs64 is not None:  # the noise floor, when needed
            metrics = compare(actual, expected.outputs, tolerance, expected.outputs64)
        for name, ref in expected.outputs.items():
            spreads[(item.label, name)] = float(np.ptp(ref)) if np.size(ref) else 0.0
        if keep_errors:
            for name, ref in expected.outputs.items():
                if name in actual and actual[name].shape == ref.shape:
                    diff = np.abs(actual[name].astype(np.float64) - ref).ravel()
                    errors.setdefault(name, []).append(diff[:: max(1, diff.size // HISTOGRAM_SAMPLES)])
        results.append(CaseResult(item.label, item.shape, all(m.passed for m in metrics), metrics,
                                  backend_ms=_ms(candidate), reference_ms=expected.ms))
        if stop_at_failure and not results[-1].passed:
            break
    return ParityResult(results, {k: np.concatenate(v) for k, v in errors.items()}, spreads)
