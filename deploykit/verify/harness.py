"""The parity harness: one backend's outputs against the PyTorch reference over the shape sweep."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from ..parity.metrics import OutputMetrics, compare_outputs
from ..errors import DeployKitError
from ..runners.torch_runner import TorchRunner
from ..recipe.shapes import ShapeCase
from . import diagnose

BACKENDS = ("ort", "ort-cuda", "ort-trt", "ref", "trt")
_ORT_PROVIDERS = {
    "ort": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_HISTOGRAM_SAMPLES = 100_000  # abs errors kept per output for the report's histogram


@dataclass
class CaseResult:
    label: str
    shape: dict
    passed: bool
    outputs: list[OutputMetrics]
    error: str | None = None
    backend_ms: float | None = None
    reference_ms: float | None = None


@dataclass
class VerifyRun:
    name: str
    backend: str
    precision: str
    model_file: str
    runner: dict
    tolerance: dict
    cases: list[CaseResult]
    diagnosis: list[str] = field(default_factory=list)
    seconds: float = 0.0
    errors: dict = field(default_factory=dict, repr=False)  # output -> sampled abs errors (for plots)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("errors")
        data["passed"] = self.passed
        data["cases"] = [{**asdict(c), "outputs": [m.as_dict() for m in c.outputs]} for c in self.cases]
        return data


def make_runner(backend: str, model_path: Path):
    if backend in _ORT_PROVIDERS:
        from ..runners.ort_runner import OrtRunner

        return OrtRunner(model_path, providers=_ORT_PROVIDERS[backend])
    if backend == "ref":
        from ..runners.ref_runner import ReferenceRunner

        return ReferenceRunner(model_path)
    if backend == "trt":
        from ..runners.trt_runner import TrtRunner

        return TrtRunner(model_path)
    raise DeployKitError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def _require_providers(backend: str, runner) -> None:
    """onnxruntime-gpu silently falls back to CPU: a GPU backend that did not get its provider fails loudly."""
    if backend in ("ort-cuda", "ort-trt"):
        wanted = _ORT_PROVIDERS[backend][0]
        used = runner.describe().get("providers_used", [])
        if wanted not in used:
            raise DeployKitError(f"--backend {backend}: onnxruntime did not use {wanted} (used: {', '.join(used)}); "
                                 "install the `gpu` extra on a machine with CUDA")


def select_cases(recipe, backend: str, static_shape: dict | None, extra: list[dict], seed: int) -> list[ShapeCase]:
    if static_shape is not None:
        cases = [ShapeCase("export", dict(static_shape))]
    else:
        cases = recipe.sweep(seed=seed)
        if backend == "ref":  # the reference evaluator is slow: a second opinion on the smallest shapes
            size = lambda c: sum(int(np.prod(s)) for s in recipe.input_shapes(c).values())  # noqa: E731
            cases = sorted(cases, key=size)[:3]
    for i, values in enumerate(extra):
        case = ShapeCase(f"user-{i + 1}", {**recipe.case("opt").values, **values})
        recipe.check_case(case)
        cases.append(case)
    return cases


def run_parity(recipe, model_path: Path, reference, *, backend: str = "ort", precision: str = "fp32",
               extra_shapes: list[dict] = (), seed: int = 0, static_shape: dict | None = None,
               export_shape: dict | None = None, on_case=None) -> VerifyRun:
    """Verify ``model_path`` on ``backend`` against the PyTorch ``reference`` over the sweep."""
    started = time.perf_counter()
    tolerance = recipe.tolerance(precision)
    cases = select_cases(recipe, backend, static_shape, list(extra_shapes), seed)
    results: list[CaseResult] = []
    errors: dict[str, list[np.ndarray]] = {}
    with make_runner(backend, model_path) as runner, TorchRunner(reference, recipe) as torch_runner:
        _require_providers(backend, runner)
        for case in cases:
            if on_case:
                on_case(case)
            feed = recipe.make_inputs(case, seed)
            expected = torch_runner.infer(feed)
            try:
                actual = runner.infer(feed)
            except Exception as exc:  # a backend failing at a shape is a result, not a crash
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                results.append(CaseResult(case.label, case.values, False, [], error=message,
                                          reference_ms=torch_runner.last_inference_time * 1e3))
                continue
            metrics = compare_outputs(actual, expected, tolerance)
            for name, ref in expected.items():
                if name in actual and actual[name].shape == ref.shape:
                    diff = np.abs(actual[name].astype(np.float64) - ref).ravel()
                    errors.setdefault(name, []).append(diff[:: max(1, diff.size // _HISTOGRAM_SAMPLES)])
            results.append(CaseResult(case.label, case.values, all(m.passed for m in metrics), metrics,
                                      backend_ms=runner.last_inference_time * 1e3,
                                      reference_ms=torch_runner.last_inference_time * 1e3))
        runner_info = runner.describe()
    run = VerifyRun(recipe.name, backend, precision, str(model_path), runner_info, asdict(tolerance), results,
                    errors={k: np.concatenate(v) for k, v in errors.items()})
    if not run.passed:
        run.diagnosis = _diagnose(run, recipe, model_path, reference, backend, precision, export_shape, seed)
    run.seconds = time.perf_counter() - started
    return run


def _diagnose(run, recipe, model_path, reference, backend, precision, export_shape, seed) -> list[str]:
    notes = []
    is_onnx = str(model_path).endswith(".onnx")
    if is_onnx:
        notes += diagnose.static_axis_problems(onnx.load(str(model_path), load_external_data=False), recipe)
    verdict = diagnose.shape_dependence([{"label": c.label, "shape": c.shape, "passed": c.passed} for c in run.cases],
                                        export_shape)
    if verdict:
        notes.append(verdict)
    if is_onnx and precision == "fp32":
        first_failed = next((c for c in run.cases if not c.passed and c.error is None), None)
        if first_failed is not None:
            case = ShapeCase(first_failed.label, first_failed.shape)
            try:
                notes.append(diagnose.first_divergence(model_path, reference, recipe, recipe.make_inputs(case, seed),
                                                       recipe.tolerance(precision)))
            except Exception as exc:  # diagnosis is best effort; never hide the verdict behind its failure
                notes.append(f"could not localise the divergence: {str(exc).splitlines()[0] if str(exc) else exc}")
    return notes
