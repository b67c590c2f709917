"""Why a verification failed: which shapes, which axis, which submodule.

Three questions, cheapest first:
1. does the ONNX fix an axis the recipe declares dynamic? (name the axis)
2. is it right at the export shape and wrong elsewhere? (a shape-dependent export bug)
3. which submodule's output is the first to diverge? PyTorch forward hooks give every submodule's
   output; the ONNX tensor leaving the nodes of the same module scope (TorchScript encodes scopes in
   node names, dynamo in ``pkg.torch.onnx.name_scopes`` metadata) is exposed as an extra graph output.
"""

from __future__ import annotations

import ast

import numpy as np
import onnx
import torch

from ..runners.torch_runner import FlatIO
from ..parity.metrics import compare_output
from ..onnx_graph import dims_of
from ..recipe.shapes import DimExpr


def static_axis_problems(model: onnx.ModelProto, recipe) -> list[str]:
    """Axes the recipe declares dynamic but the ONNX fixes, named by input and symbol."""
    problems = []
    inputs = {v.name: v for v in model.graph.input}
    for spec in recipe.inputs:
        if spec.name not in inputs:
            continue
        for axis, (got, want) in enumerate(zip(dims_of(inputs[spec.name]), spec.shape)):
            if isinstance(want, DimExpr) and not recipe.dims[want.symbol].is_static and isinstance(got, int):
                d = recipe.dims[want.symbol]
                problems.append(
                    f"input {spec.name!r} axis {axis} ({want.text}) is fixed at {got} in the ONNX, "
                    f"but the recipe declares {want.symbol} dynamic ({d.min}..{d.max})"
                )
    return problems


def shape_dependence(cases: list[dict], export_shape: dict | None) -> str | None:
    """A verdict when some shapes pass and others fail."""
    passed = [c for c in cases if c["passed"]]
    failed = [c for c in cases if not c["passed"]]
    if not failed or not passed:
        return None
    at_export = export_shape is not None and any(c["shape"] == export_shape for c in passed)
    ok = ", ".join(c["label"] for c in passed)
    bad = ", ".join(c["label"] for c in failed)
    where = "right at the export shape and wrong elsewhere" if at_export else f"right at {ok} only"
    return (f"shape-dependent export bug: {where} (passes: {ok}; fails: {bad}); "
            "typically a size baked into the graph at export (e.g. adaptive pooling, or a Python branch on a size)")


def _scopes(node: onnx.NodeProto, qualnames: set[str]) -> set[str]:
    meta = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" in meta:
        try:
            parts = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])
        except (ValueError, SyntaxError):
            parts = []
    else:
        parts = node.name.split("/")[1:-1]
    found = set()
    for part in parts:
        if part in qualnames:
            found.add(part)
        elif part.startswith("model.") and part[6:] in qualnames:
            found.add(part[6:])
    return found


def scope_outputs(model: onnx.ModelProto, qualnames: set[str]) -> dict[str, str]:
    """submodule qualname -> the single ONNX tensor its nodes hand to the rest of the graph."""
    members: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for scope in _scopes(node, qualnames):
            members.setdefault(scope, []).append(node)
    graph_outputs = {o.name for o in model.graph.output}
    result = {}
    for scope, nodes in members.items():
        inside = {id(n) for n in nodes}
        produced = {t for n in nodes for t in n.output if t}
        leaving = {t for n in model.graph.node if id(n) not in inside for t in n.input if t in produced}
        leaving |= produced & graph_outputs
        if len(leaving) == 1:
            result[scope] = leaving.pop()
    return result


def torch_intermediates(model: torch.nn.Module, recipe, feed: dict) -> list[tuple[str, str, np.ndarray]]:
    """(qualname, class, output) for every submodule, in execution order."""
    records, handles = [], []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, args, output, name=name):
            tensor = output[0] if isinstance(output, (tuple, list)) and output else output
            if isinstance(tensor, torch.Tensor):
                # copy: a later inplace op (ReLU(inplace=True)) would otherwise rewrite what was recorded
                records.append((name, type(mod).__name__, tensor.detach().cpu().numpy().copy()))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            FlatIO.of(model, recipe)(*[torch.from_numpy(feed[t.name]) for t in recipe.inputs])
    finally:
        for handle in handles:
            handle.remove()
    return records


def first_divergence(onnx_path, model: torch.nn.Module, recipe, feed: dict, tolerance) -> str | None:
    """Name the first submodule (in execution order) whose ONNX output differs from PyTorch's."""
    import onnxruntime as ort

    proto = onnx.load(str(onnx_path))
    records = torch_intermediates(model, recipe, feed)
    tensors = scope_outputs(proto, {name for name, _, _ in records})
    wanted = [(n, cls, out) for n, cls, out in records if n in tensors]
    if not wanted:
        return "no module scopes found in the ONNX node names: cannot localise the divergence"
    existing = {o.name for o in proto.graph.output}
    for name in dict.fromkeys(tensors[n] for n, _, _ in wanted):
        if name not in existing:
            proto.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, feed)))
    for qualname, cls, reference in wanted:
        got = values.get(tensors[qualname])
        if got is None:
            continue
        if got.shape != reference.shape:
            return (f"first divergence at submodule {qualname!r} ({cls}): ONNX output shape {tuple(got.shape)} "
                    f"vs PyTorch {tuple(reference.shape)}")
        metrics = compare_output(qualname, got, reference, tolerance)
        if not metrics.passed:
            return f"first divergence at submodule {qualname!r} ({cls}): max abs error {metrics.max_abs:.3g}"
    return "every submodule whose output could be matched agrees; the divergence is in the glue between them"
