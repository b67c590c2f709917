"""The two torch.onnx exporters, driven from a recipe's symbolic dims.

TorchScript (``dynamo=False``) honours the requested opset and ``dynamic_axes`` and, once the
rewrites have removed adaptive pooling, exports every zoo module; it is tried first by ``auto``.
The dynamo exporter needs ``torch.export.Dim`` objects (related inputs as derived dims), specialises
size-1 dims (so the example batch is >= 2) and may raise the opset; whatever it does is checked after.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import torch

from ..errors import ExportRefused
from ..environment import quiet
from ..tensors.shapes import DimExpr, ShapeCase, allowed_values


def example_case(recipe) -> ShapeCase:
    """The opt shape, with any dynamic dim of 1 moved up (torch.export specialises size 1)."""
    values = dict(recipe.case("opt").values)
    for name, spec in recipe.dims.items():
        if not spec.is_static and values[name] == 1:
            bigger = next((v for v in allowed_values(spec.min, spec.max, spec.multiple_of) if v >= 2), None)
            if bigger is not None:
                values[name] = bigger
    return ShapeCase("export", values)


def dynamic_axes(recipe) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for tensor in (*recipe.inputs, *recipe.outputs):
        for axis, dim in enumerate(tensor.shape):
            if dim is None:  # an output axis no symbol determines ("?"): dynamic under its own name
                axes.setdefault(tensor.name, {})[axis] = f"{tensor.name}_dim{axis}"
            elif isinstance(dim, DimExpr) and not recipe.dims[dim.symbol].is_static:
                axes.setdefault(tensor.name, {})[axis] = dim.text
    return axes


def export_torchscript(flat, example, recipe, opset: int, dynamic: bool, path: Path, log: list[str],
                       records: list | None = None) -> None:
    with quiet(log, stderr=True, records=records), torch.no_grad():
        torch.onnx.export(
            flat, tuple(example), str(path), dynamo=False, opset_version=opset,
            input_names=[t.name for t in recipe.inputs], output_names=[t.name for t in recipe.outputs],
            dynamic_axes=dynamic_axes(recipe) if dynamic else None, do_constant_folding=True,
        )


def dynamo_shapes(recipe) -> dict:
    """torch.export's dynamic_shapes for FlatIO(*inputs): one torch.export.Dim per symbol (on a base of
    multiple_of), derived dims for k*H and H/k."""
    base = {}
    for name, spec in recipe.dims.items():
        if not spec.is_static:
            step = spec.multiple_of
            lo, hi = max(spec.min // step, 1), spec.max // step
            base[name] = (torch.export.Dim(name if step == 1 else f"{name}_div{step}", min=lo, max=hi), step)
    shapes = []
    for tensor in recipe.inputs:
        spec = {}
        for axis, dim in enumerate(tensor.shape):
            if not isinstance(dim, DimExpr) or dim.symbol not in base:
                continue
            root, step = base[dim.symbol]
            scale = dim.scale * step
            if scale.denominator != 1:
                raise ExportRefused(f"the dynamo exporter cannot express {tensor.name} axis {axis} = {dim.text}")
            spec[axis] = root if scale == Fraction(1) else int(scale) * root
        shapes.append(spec)
    return {"inputs": tuple(shapes)}


def export_dynamo(flat, example, recipe, opset: int, dynamic: bool, path: Path, log: list[str],
                  records: list | None = None) -> None:
    with quiet(log, stderr=True, records=records), torch.no_grad():
        program = torch.onnx.export(
            flat, tuple(example), dynamo=True, opset_version=opset,
            input_names=[t.name for t in recipe.inputs], output_names=[t.name for t in recipe.outputs],
            dynamic_shapes=dynamo_shapes(recipe) if dynamic else None, verbose=False,
        )
        program.save(str(path))


EXPORTERS = {"torchscript": export_torchscript, "dynamo": export_dynamo}
