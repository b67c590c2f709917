"""The verify harness: one backend's outputs against the PyTorch reference over the shape sweep,
through the one parity engine (deploykit.parity), with a diagnosis when any shape fails."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from ..errors import DeployKitError, first_line
from ..export.checks import require_repeatable
from ..parity import CaseResult, ParityInput, compare_runners, inputs_for
from ..parity.metrics import near_floor
from ..tensors.shapes import ShapeCase
from ..backends import BACKENDS as BACKEND_TABLE
from ..recipe.coverage import every_value_cases, verify_cases
from ..runners.torch_runner import TorchRunner
from . import diagnose

# the backends verify can run (rows of the one backend table); ort-cpu is the default
BACKENDS = tuple(name for name, row in BACKEND_TABLE.items() if row.verify)  # = backends.names("verify")


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
    seed: int = 0  # of the off-grid shapes, the samples and the inputs: the run is reproducible from it
    samples: int = 0
    coverage: str = "sweep"  # or, when export could not prove the range: every declared value of each axis
    # the sha256 of the model file checked: a later export replaces the model, and whoever reads verify.json
    # compares this with the manifest's (an old PASSED is about another model)
    model_sha256: str | None = None
    reference: str = "torch"  # the module itself, or its outputs as export stored them (reference.py)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("errors")
        data["passed"] = self.passed
        data["cases"] = [c.to_dict() for c in self.cases]
        return data


def make_runner(backend: str, model_path: Path):
    if backend not in BACKENDS:
        raise DeployKitError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return BACKEND_TABLE[backend].runner(model_path)


def run_parity(recipe, model_path: Path, reference, *, backend: str = "ort-cpu", precision: str = "fp32",
               extra_shapes: list[dict] = (), seed: int = 0, samples: int = 0, static_shape: dict | None = None,
               export_shape: dict | None = None, on_case=None, range_sampled: bool = False) -> VerifyRun:
    """Verify ``model_path`` on ``backend`` against PyTorch (``reference``: a deploykit.reference.Reference, the
    artifact's stored outputs or the module) over the sweep (and every declared value of each axis when
    ``range_sampled``: export could not prove the range, guards.py)."""
    started = time.perf_counter()
    tolerance = recipe.tolerance(precision)
    cases = verify_cases(recipe, backend, static_shape, list(extra_shapes), seed, samples, range_sampled)
    inputs = inputs_for(recipe, cases, seed)
    notify = (lambda item: on_case(ShapeCase(item.label, item.shape))) if on_case else None
    not_stored = []
    if reference.load_module is None and not extra_shapes and not seed and not samples:
        # the default sweep, no module: the shapes export stored (a case past the size bound was left out)
        held = reference.held([i.feed for i in inputs])
        if any(held):
            not_stored = [i.describe() for i, h in zip(inputs, held) if not h]
            inputs = [i for i, h in zip(inputs, held) if h]
    torch_runner = reference.runner(recipe, [i.feed for i in inputs], _what(cases, extra_shapes, seed, samples))
    with make_runner(backend, model_path) as runner, torch_runner:
        if hasattr(torch_runner, "flat"):  # the module itself runs: it must be repeatable (the stored one was)
            _require_repeatable(torch_runner, recipe, cases[0], seed)
        result = compare_runners(torch_runner, runner, inputs, tolerance, on_case=notify,
                                 keep_errors=True, floor=precision == "fp32")
        runner_info = runner.describe()
    run = VerifyRun(recipe.name, backend, precision, str(model_path), runner_info, asdict(tolerance), result.cases,
                    errors=result.errors, seed=seed, samples=samples, reference=torch_runner.describe()["runner"])
    if range_sampled and static_shape is None:
        run.coverage = every_value_cases(recipe)[1]
    if not_stored:
        run.coverage += (f"; not checked: {', '.join(not_stored)} (export stored no PyTorch output there: past its "
                         f"--reference-mb bound; {reference.why_not} to check them)")
    run.diagnosis = _ill_conditioned(run, result)
    if not run.passed:
        run.diagnosis += _diagnose(run, recipe, model_path, reference, backend, precision, export_shape, seed)
    run.seconds = time.perf_counter() - started
    return run


def _what(cases, extra_shapes, seed: int, samples: int) -> str:
    if extra_shapes:
        return f"the --shape {', '.join(c.describe() for c in cases[-len(extra_shapes):])}"
    if seed or samples:
        return f"the sweep of --seed {seed}" + (f" --samples {samples}" if samples else "")
    return "every shape of the sweep"


def _require_repeatable(torch_runner, recipe, case: ShapeCase, seed: int) -> None:
    """A reference whose output changes between identical calls cannot judge anything (export/checks.py)."""
    import torch

    feed = recipe.make_inputs(case, seed)
    require_repeatable(torch_runner.flat, lambda: [torch.tensor(feed[t.name]) for t in recipe.inputs], case)


ILL_CONDITIONED = 1e-3  # PyTorch's own FP32 error, as a share of an output's range, above which parity says little


def _ill_conditioned(run, result) -> list[str]:
    """A note where PyTorch's own FP32 error (the floor) is a large share of an output's range: at these
    weights the network is ill-conditioned, and no FP32 comparison of it means much."""
    notes = []
    for case in run.cases:
        for m in case.outputs:
            spread = result.spreads.get((case.label, m.name))
            if m.floor is not None and spread and m.floor > ILL_CONDITIONED * spread:
                notes.append(f"ill-conditioned: at {case.describe()} PyTorch's own FP32 error on {m.name!r} is "
                             f"{m.floor:.3g}, {m.floor / spread:.1%} of its range ({spread:.3g}): parity there "
                             "says little about the export (check the weights)")
                return notes
    return notes


def _diagnose(run, recipe, model_path, reference, backend, precision, export_shape, seed) -> list[str]:
    notes = []
    is_onnx = str(model_path).endswith(".onnx")
    if is_onnx:
        notes += diagnose.static_axis_problems(onnx.load(str(model_path), load_external_data=False), recipe)
    first_failed = next((c for c in run.cases if not c.passed and c.error is None), None)
    rounding = near_floor(first_failed.outputs) if first_failed is not None else None
    if rounding is not None:  # other data or other shapes would only draw other rounding: no verdict from them
        notes.append(f"{first_failed.describe()} fails by {rounding:.0f}x PyTorch's own FP32 rounding error (both "
                     "against float64): rounding in a numerically ill-conditioned network, not a structural export "
                     "bug; check the weights and normalisation statistics")
        return notes
    data_dependent = False
    module = reference.module()
    if module is None:  # the stored reference holds the sweep's inputs only; the rest of the diagnosis runs PyTorch
        notes.append(f"no diagnosis beyond the failing shapes: it runs PyTorch at other inputs, which needs the "
                     f"module ({reference.why_not})")
        return notes
    if first_failed is not None:  # the same shape, other data: tells data from shape dependence
        verdict, data_dependent = _rerun_with_other_data(first_failed, recipe, model_path, module, backend,
                                                         precision, seed)
        notes.append(verdict)
    if not data_dependent:
        verdict = diagnose.shape_dependence([{"label": c.label, "shape": c.shape, "passed": c.passed}
                                             for c in run.cases], export_shape)
        if verdict:
            notes.append(verdict)
    if is_onnx and precision == "fp32" and first_failed is not None:
        case = ShapeCase(first_failed.label, first_failed.shape)
        try:
            notes.append(diagnose.first_divergence(model_path, module, recipe, recipe.make_inputs(case, seed),
                                                   recipe.tolerance(precision)))
        except Exception as exc:  # diagnosis is best effort; never hide the verdict behind its failure
            notes.append(f"could not localise the divergence: {first_line(exc)}")
    return notes


def _rerun_with_other_data(case: CaseResult, recipe, model_path, module, backend, precision, seed):
    """(note, data-dependent?) from three more runs at the failing shape with other seeds."""
    shape = ShapeCase(case.label, case.shape)
    inputs = [ParityInput(f"{case.label}/seed-{s}", case.shape, recipe.make_inputs(shape, s))
              for s in (seed + 1, seed + 2, seed + 3)]
    try:
        with make_runner(backend, model_path) as runner, TorchRunner(module, recipe) as torch_runner:
            result = compare_runners(torch_runner, runner, inputs, recipe.tolerance(precision),
                                     floor=precision == "fp32")
    except Exception as exc:  # diagnosis is best effort
        return f"could not re-run {case.describe()} with other data: {first_line(exc)}", False
    passing = [c for c in result.cases if c.passed]
    if passing:
        return (f"data-dependent: at {case.describe()} the model fails with the sweep's inputs (seed {seed}) but "
                f"passes with {len(passing)} of {len(inputs)} other seeds: a value or branch that depends on the "
                "data was fixed at export (e.g. .item() or a Python `if` on a tensor)"), True
    return (f"not data-dependent: at {case.describe()} it fails with other inputs as well "
            f"({len(inputs)} more seeds)"), False
