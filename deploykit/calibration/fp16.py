"""The FP16 model: onnxconverter-common's ``convert_float_to_float16``, with the overflow-prone
operators kept in FP32 and chosen from the calibration ranges.

Kept in FP32 (the list goes to the manifest, with the reason and the measured number):
- by type: LayerNormalization / InstanceNormalization / GroupNormalization (mean and variance of
  large activations) and Softmax / LogSoftmax (attention logits; exp overflows at 11.1 in FP16);
- reductions whose accumulator would exceed the FP16 budget: ``seen |x| * reduced elements`` for
  sums and means, ``|x|^2 * n`` for sums of squares / L2, ``exp(x) * n`` for log-sum-exp, at the
  calibration shape;
- any node whose measured output (or graph input it reads) exceeds the budget.
The budget is ``65504 / headroom`` (headroom 8 by default: inputs larger than the calibration data,
larger H and W at the top of the shape range). The converter's own block list (e.g. Resize) also
stays FP32 and is listed too. Inputs and outputs stay float32 (``keep_io_types``), so the FP16 model
is a drop-in for model.onnx.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import DeployKitError, first_line
from ..environment import quiet
from ..runners.ort_runner import ort_session
from .options import DEFAULT_HEADROOM
from .ranges import Ranges

FP16_MAX = 65504.0
NORMALIZATIONS = ("LayerNormalization", "InstanceNormalization", "GroupNormalization")
SOFTMAXES = ("Softmax", "LogSoftmax")
REDUCTIONS = {"ReduceSum": "sum", "ReduceMean": "sum", "ReduceL1": "sum", "ReduceLogSum": "sum",
              "ReduceSumSquare": "square", "ReduceL2": "square", "ReduceLogSumExp": "exp", "ReduceProd": "prod"}


@dataclass(frozen=True)
class KeptNode:
    name: str
    op_type: str
    reason: str
    measured: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def tensor_shapes(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Every float tensor's shape at one feed: one onnxruntime run with all of them as outputs."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type for v in (*inferred.graph.value_info, *inferred.graph.output)}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in existing and name in types:
                probe.graph.output.append(onnx.ValueInfoProto(name=name, type=types[name]))
    session = ort_session(probe.SerializeToString())  # onnxruntime's defaults: all graph optimizations, its threads
    names = [o.name for o in session.get_outputs()]
    shapes = {n: tuple(v.shape) for n, v in zip(names, session.run(names, feed))}
    shapes.update({k: tuple(v.shape) for k, v in feed.items()})
    return shapes


def _constant(model: onnx.ModelProto, name: str):
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def reduced_elements(model: onnx.ModelProto, node: onnx.NodeProto, shapes: dict) -> int | None:
    """How many elements one output value of a Reduce* node accumulates (None when unknown)."""
    shape = shapes.get(node.input[0])
    if shape is None:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        found = _constant(model, node.input[1])
        axes = None if found is None else [int(a) for a in np.atleast_1d(found)]
        if found is None:
            return None
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return 1
        axes = range(len(shape))
    return int(np.prod([shape[a] for a in axes])) if shape else 1


def choose_fp32_nodes(model: onnx.ModelProto, ranges: Ranges, shapes: dict,
                      headroom: float = DEFAULT_HEADROOM) -> list[KeptNode]:
    """The nodes to keep in FP32, each with its reason (see the module docstring for the rules)."""
    budget = FP16_MAX / headroom
    graph_inputs = {i.name for i in model.graph.input}
    kept: list[KeptNode] = []
    for node in model.graph.node:
        if node.op_type in NORMALIZATIONS:
            kept.append(KeptNode(node.name, node.op_type,
                                 "normalisation: statistics overflow or lose precision in FP16"))
            continue
        if node.op_type in SOFTMAXES:
            amax = ranges.tensors[node.input[0]].seen_amax if node.input[0] in ranges.tensors else None
            kept.append(KeptNode(node.name, node.op_type, "softmax over attention logits: exp overflows in FP16", amax))
            continue
        if node.op_type in REDUCTIONS and node.input[0] in ranges.tensors:
            amax = ranges.tensors[node.input[0]].seen_amax
            count = reduced_elements(model, node, shapes)
            kind = REDUCTIONS[node.op_type]
            if count is None:
                kept.append(KeptNode(node.name, node.op_type, "reduction over an unknown number of elements", amax))
                continue
            if kind == "sum":
                accumulated = amax * count
            elif kind == "square":
                accumulated = amax * amax * count
            elif kind == "exp":
                accumulated = math.exp(min(amax, 700.0)) * count
            else:
                accumulated = amax ** min(count, 10_000)
            if accumulated > budget:
                kept.append(KeptNode(node.name, node.op_type,
                                     f"reduction: {kind} of {count} elements of |x| <= {amax:.4g} reaches "
                                     f"{accumulated:.4g} > {budget:.4g} (FP16 max / {headroom:g})", accumulated))
                continue
        outputs = [ranges.tensors[o].seen_amax for o in node.output if o in ranges.tensors]
        inputs = [ranges.tensors[i].seen_amax for i in node.input if i in graph_inputs and i in ranges.tensors]
        worst = max(outputs + inputs, default=0.0)
        if worst > budget:
            kept.append(KeptNode(node.name, node.op_type, f"measured |x| up to {worst:.4g} > {budget:.4g} "
                                                          f"(FP16 max / {headroom:g})", worst))
    return kept


def convert_fp16(model: onnx.ModelProto, keep: list[KeptNode]) -> tuple[onnx.ModelProto, list[KeptNode]]:
    """The FP16 model and the full list of FP32 nodes (``keep`` plus the converter's own block list)."""
    from onnxconverter_common import float16

    names = {k.name for k in keep}
    unnamed = [n for n in model.graph.node if not n.name]
    if unnamed:
        raise DeployKitError(f"model.onnx has {len(unnamed)} unnamed node(s); the FP16 block list needs names")
    defaults = [KeptNode(n.name, n.op_type, "converter default block list (onnxconverter-common)")
                for n in model.graph.node if n.op_type in float16.DEFAULT_OP_BLOCK_LIST and n.name not in names]
    # onnxconverter-common 1.16 retypes a Cast's output to FP16 but leaves its `to` at FLOAT (an invalid
    # model): blocking such Casts makes the converter add its own FP16 cast after them instead.
    casts = [KeptNode(n.name, n.op_type, "Cast to float32 in the export (converter cannot retarget it)")
             for n in model.graph.node if n.op_type == "Cast" and n.name not in names
             and any(a.name == "to" and a.i == TensorProto.FLOAT for a in n.attribute)]
    defaults += casts
    names |= {k.name for k in casts}
    source = onnx.ModelProto()
    source.CopyFrom(model)
    _separate_consumed_outputs(source)
    with quiet():
        converted = float16.convert_float_to_float16(
            source, min_positive_val=2.0 ** -24, max_finite_val=FP16_MAX, keep_io_types=True,
            op_block_list=float16.DEFAULT_OP_BLOCK_LIST, node_block_list=sorted(names))
    _restore_float_outputs(converted, model)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise DeployKitError(f"the FP16 conversion produced an invalid model: {first_line(exc)}") from None
    return converted, [*keep, *defaults]


def _separate_consumed_outputs(model: onnx.ModelProto) -> None:
    """A graph output that other nodes also read (FPN's P6 feeds P7) comes out of keep_io_types as a
    float32 tensor its FP16 consumers read: give such outputs their own Identity before converting."""
    outputs = {o.name for o in model.graph.output}
    consumed = {i for n in model.graph.node for i in n.input} & outputs
    for name in sorted(consumed):
        inner = f"{name}/fp16_internal"
        for node in model.graph.node:
            node.output[:] = [inner if o == name else o for o in node.output]
            node.input[:] = [inner if i == name else i for i in node.input]
        model.graph.node.append(helper.make_node("Identity", [inner], [name], name=f"{name}/output_identity"))


def _restore_float_outputs(converted: onnx.ModelProto, original: onnx.ModelProto) -> None:
    """keep_io_types leaves an output FP16 when a blocked node (e.g. Resize) produces it
    (onnxconverter-common 1.16); cast such outputs back to float32 so the I/O match model.onnx."""
    want = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    for output in converted.graph.output:
        elem = output.type.tensor_type.elem_type
        if want.get(output.name) != TensorProto.FLOAT or elem != TensorProto.FLOAT16:
            continue
        inner = f"{output.name}_fp16"
        for node in converted.graph.node:
            node.output[:] = [inner if o == output.name else o for o in node.output]
            node.input[:] = [inner if i == output.name else i for i in node.input]
        converted.graph.node.append(helper.make_node("Cast", [inner], [output.name], to=TensorProto.FLOAT,
                                                     name=f"{output.name}_cast_to_fp32"))
        output.type.tensor_type.elem_type = TensorProto.FLOAT


def fp32_node_names(model: onnx.ModelProto) -> set[str]:
    """Nodes of a converted model that compute in float32 (their float inputs are float32)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.value_info, *inferred.graph.input,
                                                              *inferred.graph.output)}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    return {n.name for n in model.graph.node if n.op_type != "Cast"
            and any(types.get(i) == TensorProto.FLOAT for i in n.input)
            and not any(types.get(i) == TensorProto.FLOAT16 for i in n.input)}


def ort_cpu_kernels(model: onnx.ModelProto) -> dict:
    """Which FP16 operators onnxruntime's CPU provider runs in FP16, and which it wraps in Casts to
    run its FP32 kernel (it inserts ``InsertedPrecisionFreeCast_*`` nodes when it has no FP16 kernel)."""
    import tempfile
    from pathlib import Path

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.value_info, *inferred.graph.input)}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    fp16_nodes = {n.name: n.op_type for n in model.graph.node
                  if n.op_type != "Cast" and any(types.get(i) == TensorProto.FLOAT16 for i in n.input)}
    with tempfile.TemporaryDirectory(prefix="deploykit-fp16-") as tmp:
        placed_path = Path(tmp) / "placed.onnx"
        ort_session(model.SerializeToString(), optimization="disable", optimized_path=placed_path)
        placed = onnx.load(str(placed_path))
    producers = {out: n for n in placed.graph.node for out in n.output}
    native, fallback = {}, {}
    for node in placed.graph.node:
        if node.name not in fp16_nodes:
            continue
        wrapped = any(producers.get(i) is not None and producers[i].name.startswith("InsertedPrecisionFreeCast_")
                      for i in node.input)
        bucket = fallback if wrapped else native
        bucket[node.op_type] = bucket.get(node.op_type, 0) + 1
    # ORT moves its casts across data-movement ops, so a type with any native node has an FP16 kernel
    return {"fp16_kernels": sorted(native), "fp32_kernels_with_casts": sorted(set(fallback) - set(native))}
