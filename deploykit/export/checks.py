"""Checks every exported model must pass before deploykit writes it.

A failure is an ExportRefused naming what is wrong: deploykit never writes a silently wrong model.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from ..parity import ParityResult, compare_runners, inputs_for, record
from ..parity.metrics import near_floor
from ..errors import ExportRefused, first_line
from ..guard import at_declared_shape
from ..onnx_graph import dims_of
from ..runners.ort_runner import OrtRunner
from ..runners.torch_runner import TorchRunner
from ..tensors.shapes import DimExpr


def check_onnx_model(path: Path) -> None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # onnx raises ValidationError / InferenceError
        raise ExportRefused(f"onnx.checker rejects the exported model: {first_line(exc)}") from None


def stamp_static_output_dims(model: onnx.ModelProto, recipe) -> list[str]:
    """Write the recipe's fixed sizes over output dims the exporter left as placeholder names.

    TorchScript's shape inference sometimes names a static output axis (``Addy_dim_1``) instead of
    giving its size; TensorRT and Triton then lose that size. Only the graph's metadata changes:
    the parity checks that follow compare real output shapes at several input shapes.
    """
    outputs = {v.name: v for v in model.graph.output}
    stamped = []
    for spec in recipe.outputs:
        if spec.name not in outputs:
            continue
        dims = outputs[spec.name].type.tensor_type.shape.dim
        for axis, (dim, want) in enumerate(zip(dims, spec.shape)):
            if want is None or isinstance(want, DimExpr) and not recipe.dims[want.symbol].is_static:
                continue
            size = want if isinstance(want, int) else want.evaluate({want.symbol: recipe.dims[want.symbol].value})
            if not dim.HasField("dim_value"):
                stamped.append(f"{spec.name}[{axis}]: {dim.dim_param or '?'} -> {size}")
                dim.dim_value = size
    return stamped


def check_dynamic_axes(model: onnx.ModelProto, recipe, static_case=None) -> None:
    """Every axis the recipe declares dynamic must be symbolic in the ONNX inputs and outputs.

    A dynamic axis that came out as a fixed number is the dynamo exporter's silent specialisation
    (e.g. temporal_conv's T, a guard pinned it): an error, never a warning. With ``static_case``
    (``--static``), every axis must instead equal that case's size.
    """
    tensors = {v.name: v for v in (*model.graph.input, *model.graph.output)}
    for spec in (*recipe.inputs, *recipe.outputs):
        kind = "input" if spec in recipe.inputs else "output"
        if spec.name not in tensors:
            raise ExportRefused(f"the ONNX has no {kind} named {spec.name!r} (it has {sorted(tensors)})")
        dims = dims_of(tensors[spec.name])
        if len(dims) != len(spec.shape):
            raise ExportRefused(f"{kind} {spec.name!r} has rank {len(dims)} in the ONNX, the recipe says {len(spec.shape)}")
        for axis, (got, want) in enumerate(zip(dims, spec.shape)):
            dynamic = want is None or isinstance(want, DimExpr) and not recipe.dims[want.symbol].is_static
            label = want.text if isinstance(want, DimExpr) else "?" if want is None else str(want)
            if static_case is not None and want is None:
                continue  # an unrelated dynamic output axis: its size at the static shape is whatever the graph says
            if static_case is not None:
                expected = want if isinstance(want, int) else want.evaluate(static_case.values)
                if got != expected:
                    raise ExportRefused(f"{kind} {spec.name!r} axis {axis} ({label}) is {got}, expected {expected}")
            elif dynamic and not isinstance(got, str):
                raise ExportRefused(
                    f"{kind} {spec.name!r} axis {axis} ({label}) was declared dynamic but came out static "
                    f"({got}) in the ONNX: the exporter specialised it; refusing to write a model that rejects "
                    f"the shapes the recipe allows"
                )
            elif not dynamic:
                expected = want if isinstance(want, int) else want.evaluate({want.symbol: recipe.dims[want.symbol].value})
                if got != expected:
                    # A symbolic or wrong size where the recipe fixes one hides the real size from TensorRT/Triton.
                    raise ExportRefused(f"{kind} {spec.name!r} axis {axis} ({label}) is {got!r} in the ONNX, "
                                        f"the recipe fixes it at {expected}")


class ReferenceCheck:
    """The PyTorch reference's outputs at the check cases, computed once, and the checks every candidate
    (raw export, each simplifier's result, the optimized graph) must pass against them."""

    def __init__(self, reference, recipe, cases, tolerance, static_case=None, seed: int = 0):
        self.reference, self.recipe, self.seed = reference, recipe, seed
        self.tolerance, self.static_case = tolerance, static_case
        self.cases = list(cases)
        self.inputs = inputs_for(recipe, cases, seed)
        self._recorded = None

    def recorded(self) -> list:
        """The reference's outputs, computed on first use: the dims checks run before the first
        reference run, so a module that rejects a declared shape is refused with the axis named."""
        if self._recorded is None:
            with TorchRunner(self.reference, self.recipe) as torch_runner:
                self._recorded = record(torch_runner, self.inputs)
        return self._recorded

    def parity(self, model_bytes: bytes) -> ParityResult:
        """The ONNX in onnxruntime CPU against the reference at every case."""
        recorded = self.recorded()
        with OrtRunner(model_bytes) as ort_runner:
            return compare_runners(recorded, ort_runner, self.inputs, self.tolerance)

    def require(self, candidate: onnx.ModelProto, what: str) -> None:
        """Declared dims (dynamic, or the --static case) and parity, or ExportRefused."""
        check_dynamic_axes(candidate, self.recipe, self.static_case)
        require_parity(self.parity(candidate.SerializeToString()), what)

    def at(self, cases) -> "ReferenceCheck":
        """The same reference and tolerance at other cases (the points where a trace's guards are false)."""
        return ReferenceCheck(self.reference, self.recipe, cases, self.tolerance, self.static_case, self.seed)

    def require_guarded(self, candidate: onnx.ModelProto, analysis) -> None:
        """Parity at every point where a guard of the trace is false, or the range analysis's refusal."""
        result = self.parity(candidate.SerializeToString())
        first = result.first_failure
        if first is not None:
            case = next(c for c in self.cases if c.values == first.shape)
            raise ExportRefused(analysis.refusal(case, first.failures[0]))

    def add(self, other: "ReferenceCheck") -> None:
        """Hold every later candidate to ``other``'s cases too (their reference outputs reused)."""
        self.cases = [*self.cases, *other.cases]
        self.inputs = [*self.inputs, *other.inputs]
        if self._recorded is not None:
            self._recorded = [*self._recorded, *other.recorded()]


def require_parity(result: ParityResult, what: str) -> None:
    first = result.first_failure
    if first is None:
        return
    passed = [c for c in result.cases if c.passed]
    hint = ""
    rounding = near_floor(first.outputs) if first.error is None else None
    if rounding is not None:
        hint = (f"; that is {rounding:.0f}x PyTorch's own FP32 rounding error there (both against float64): the "
                "network is numerically ill-conditioned at that shape (outputs far larger than its inputs, or "
                "cancellation), not shape-dependent; check its weights and normalisation statistics")
    elif passed:
        ok = ", ".join(c.describe() for c in passed)
        hint = f"; it matches at {ok}, so the export is shape-dependent (e.g. a pooling size baked in)"
    raise ExportRefused(f"{what} differs from PyTorch at {first.describe()} ({first.failures[0]}){hint}")


REPEAT_BOUND = 1e-6  # two identical calls may differ by this share of the output's largest value (CPU reductions)


def require_repeatable(flat, make_tensors, case) -> None:
    """Two FP32 runs of the module on the same input must agree: a module whose output changes between
    identical calls (fresh noise, a counter in forward) cannot be verified against anything, and its
    differences would otherwise be excused as rounding."""
    import torch

    with at_declared_shape(f"the PyTorch module at {case.describe()}"), torch.no_grad():
        first, second = flat(*make_tensors()), flat(*make_tensors())
    for index, (a, b) in enumerate(zip(first, second)):
        a, b = a.detach().double(), b.detach().double()
        scale = max(float(a.abs().max()) if a.numel() else 0.0, 1.0)
        gap = float((a - b).abs().max()) if a.numel() else 0.0
        if not gap <= REPEAT_BOUND * scale:  # NaN differences too
            raise ExportRefused(f"the output changes between two identical calls: output {index} differs by "
                                f"{gap:.3g} at {case.describe()} (a random op or a state that changes in forward); "
                                "deploykit can only verify a deterministic "
                                "forward: remove the randomness from eval mode, or make it an input")
