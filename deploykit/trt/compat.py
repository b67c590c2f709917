"""CPU checks of an ONNX model against what the TensorRT ONNX parser accepts, before any build.

Every node (subgraphs included) is checked against the pinned operators.md table
(``onnx_support``): unsupported operators, attribute values outside the documented set (Resize
coordinate modes, ...), and the restrictions the table encodes as ``checks`` (Q/DQ zero-points 0,
no INT32 bias DequantizeLinear, 2D/3D pooling without an Indices output, build-time constant
inputs...). ``check_dims`` compares the ONNX inputs with the optimization profile: an axis the
profile needs dynamic but the ONNX fixes, and equally-named ONNX dims the profile gives different
sizes (TensorRT treats equally-named dims as equal: NVIDIA/TensorRT samples/sampleNamedDimensions).
"""

from __future__ import annotations


import numpy as np
import onnx
from onnx import TensorProto, helper

from ..onnx_graph import OnnxGraph, dims_of, load_model, opset_of, subgraphs
from .onnx_support import TrtTarget, operator_spec, opset_range, unsupported_reason
from .problems import Problem
from .shape_profile import LABELS, Profile

# TensorRT's quantized types (operators.md: DequantizeLinear INT8, FP8, FP4, INT4).
_TRT_QUANTIZED = {TensorProto.INT8: "INT8", TensorProto.FLOAT8E4M3FN: "FP8", TensorProto.INT4: "INT4"}
if hasattr(TensorProto, "FLOAT4E2M1"):
    _TRT_QUANTIZED[TensorProto.FLOAT4E2M1] = "FP4"

_SYMMETRIC_FIX = ("re-quantize symmetrically: `deploykit calibrate` does; with onnxruntime's quantize_static use "
                  "activation_type=QInt8, weight_type=QInt8, extra_options={'ActivationSymmetric': True, 'WeightSymmetric': True}")


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"<unnamed {node.op_type} #{index}>"


def _input(node, index: int) -> str:
    return node.input[index] if index < len(node.input) else ""


def _output(node, index: int) -> str:
    return node.output[index] if index < len(node.output) else ""


def _type_name(elem_type: int | None) -> str:
    return TensorProto.DataType.Name(elem_type) if elem_type else "unknown"


def check_model(model, target: TrtTarget) -> list[Problem]:
    """Every operator/attribute problem TensorRT's ONNX parser would hit, with the node name and a fix."""
    model = load_model(model)
    problems = _check_opset(model, target)
    graph = OnnxGraph(model)
    index = 0
    for g in subgraphs(model.graph):
        for node in g.node:
            problems += _check_node(node, _node_label(node, index), graph, target)
            index += 1
    return problems


def _check_opset(model, target: TrtTarget) -> list[Problem]:
    lo, hi = opset_range(target)
    version = opset_of(model)
    if version is not None and not lo <= version <= hi:
        return [Problem("model", "opset", f"opset {version} is outside {lo}..{hi}, the range {target.describe()} parses",
                        f"export with an opset in {lo}..{hi} (`deploykit export NAME --opset 17`)")]
    return []


def _check_node(node, where: str, graph: OnnxGraph, target: TrtTarget) -> list[Problem]:
    reason = unsupported_reason(node.op_type, node.domain, target)
    if reason:
        return [Problem(where, "operator", reason,
                        f"replace {node.op_type} in the PyTorch module with supported operators "
                        f"(or provide a TensorRT plugin named {node.op_type})")]
    spec = operator_spec(node.op_type, target)
    problems = []
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for name, allowed in spec.get("allowed", {}).items():
        if name not in attrs:
            continue  # the ONNX default, which the table allows
        value = attrs[name].decode() if isinstance(attrs[name], bytes) else attrs[name]
        if value not in allowed:
            problems.append(Problem(where, _attribute_check(node.op_type), f"{node.op_type} {name}={value!r} is unsupported",
                                    _attribute_fix(node.op_type, name, value, allowed)))
    for check in spec.get("checks", []):
        problems += CHECKS[check["check"]](node, where, check, graph, attrs)
    return problems


def _attribute_check(op_type: str) -> str:
    return {"Resize": "resize"}.get(op_type, "attribute")


def _attribute_fix(op_type: str, name: str, value, allowed: list) -> str:
    options = ", ".join(map(str, allowed))
    if op_type == "Resize" and name == "coordinate_transformation_mode":
        return (f"use one of {options}: e.g. F.interpolate(..., align_corners=False) exports half_pixel; "
                "half_pixel_symmetric comes from opset-19+ Resize, so export at opset <= 18")
    if op_type == "Resize" and name == "mode":
        return f"use mode nearest or linear ({value} is unsupported): e.g. bilinear instead of bicubic interpolation"
    return f"use {name} in {{{options}}}"


# -- the checks the table names ----------------------------------------------------------------
def _zero_point(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    name = _input(node, check["input"])
    if not name:
        return []
    value = graph.constant(name)
    if value is None:
        return [Problem(where, "qdq", f"{node.op_type} zero-point {name!r} is not a constant",
                        "make the zero-point an initializer equal to 0 (symmetric quantization)")]
    if np.any(value != 0):
        nonzero = np.unique(value[value != 0])[:4]
        return [Problem(where, "qdq", f"{node.op_type} zero-point is {', '.join(map(str, nonzero))} (TensorRT needs 0)",
                        _SYMMETRIC_FIX)]
    return []


def _quantized_type(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    if node.op_type == "QuantizeLinear":
        zp = _input(node, 2)
        elem = attrs.get("output_dtype") or (graph.elem_type(zp) if zp else None) or TensorProto.UINT8  # ONNX default
        what = "quantizes to"
    else:
        elem = graph.elem_type(_input(node, 0))
        what = "dequantizes"
    if elem is None or elem in _TRT_QUANTIZED:
        return []
    if node.op_type == "DequantizeLinear" and elem == TensorProto.INT32:
        return [Problem(where, "qdq", "INT32 bias DequantizeLinear: TensorRT's parser rejects INT32 dequantization",
                        "quantize without bias quantization (onnxruntime quantize_static: "
                        "extra_options={'QuantizeBias': False}); `deploykit calibrate` does this")]
    if elem == TensorProto.UINT8:
        return [Problem(where, "qdq", f"{node.op_type} {what} UINT8 (asymmetric); TensorRT quantizes to signed INT8",
                        _SYMMETRIC_FIX)]
    return [Problem(where, "qdq", f"{node.op_type} {what} {_type_name(elem)}; TensorRT supports "
                    f"{', '.join(sorted(set(_TRT_QUANTIZED.values())))}", "quantize to INT8 (symmetric)")]


def _pool_rank(node, where, check, graph, attrs) -> list[Problem]:
    kernel = attrs.get("kernel_shape")
    if kernel is not None and len(kernel) not in (2, 3):
        return [Problem(where, "pooling", f"{node.op_type} is {len(kernel)}D; TensorRT pools 2D or 3D only",
                        "pool in 2D (unsqueeze a unit axis before the pool and squeeze it after)")]
    return []


def _unit_dilations(node, where, check, graph, attrs) -> list[Problem]:
    dilations = attrs.get("dilations")
    if dilations and any(d != 1 for d in dilations):
        return [Problem(where, "pooling", f"{node.op_type} dilations={list(dilations)}; TensorRT needs all ones",
                        "use dilation=1 in the pooling layer")]
    return []


def _absent_outputs(node, where, check, graph, attrs) -> list[Problem]:
    present = [n for i, n in zip(check["outputs"], check["names"]) if _output(node, i)]
    if not present:
        return []
    fix = ("use return_indices=False (nn.MaxPool2d) / drop the indices" if node.op_type == "MaxPool"
           else "do not use those outputs")
    return [Problem(where, "pooling" if node.op_type == "MaxPool" else "attribute",
                    f"{node.op_type} output(s) {', '.join(present)} are unsupported", fix)]


def _absent_inputs(node, where, check, graph, attrs) -> list[Problem]:
    present = [n for i, n in zip(check["inputs"], check["names"]) if _input(node, i)]
    return [Problem(where, "attribute", f"{node.op_type} input(s) {', '.join(present)} are unsupported",
                    "do not feed those inputs")] if present else []


def _absent_attributes(node, where, check, graph, attrs) -> list[Problem]:
    present = [a for a in check["attributes"] if a in attrs]
    return [Problem(where, "attribute", f"{node.op_type} attribute(s) {', '.join(present)} are unsupported",
                    "remove them")] if present else []


def _constant_input(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    name = _input(node, check["input"])
    if name and graph.constant(name) is None:
        return [Problem(where, "attribute", f"{node.op_type} {check['name']} ({name!r}) is computed at run time; "
                        "TensorRT needs a build-time constant",
                        "make it constant (simplify the model: onnxsim/onnxslim fold constant subgraphs)")]
    return []


def _max_constant_input(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    value = graph.constant(_input(node, check["input"]))
    if value is not None and value.size and int(np.max(value)) >= check["limit"]:
        return [Problem(where, "attribute", f"{node.op_type} {check['name']}={int(np.max(value))} (TensorRT needs < {check['limit']})",
                        f"use {check['name']} < {check['limit']}")]
    return []


def _not_training(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    name = _input(node, check["input"])
    if not name:
        return []
    value = graph.constant(name)
    if value is None or bool(np.any(value)):
        return [Problem(where, "attribute", f"{node.op_type} is_training is not a constant False",
                        "export in eval mode (model.eval())")]
    return []


def _static_input(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    dims = graph.dims(_input(node, check["input"]))
    if dims is not None and not all(isinstance(d, int) and d > 0 for d in dims):
        return [Problem(where, "attribute", f"{node.op_type} input has dynamic dims {dims}; TensorRT needs static ones",
                        "fix that tensor's shape")]
    return []


def _input_rank(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    dims = graph.dims(_input(node, check["input"]))
    if dims is not None and len(dims) not in check["ranks"]:
        return [Problem(where, "attribute", f"{node.op_type} input is {len(dims)}D; TensorRT supports rank {check['ranks']}",
                        "reshape the input")]
    return []


def _resize_axes(node, where, check, graph: OnnxGraph, attrs) -> list[Problem]:
    axes = attrs.get("axes")
    scales = _input(node, 2)
    if axes is None or not scales or graph.constant(scales) is not None:
        return []
    dims = graph.dims(_input(node, 0))
    rank = len(dims) if dims is not None else len(axes)
    if list(axes) != list(range(rank)):
        return [Problem(where, "resize", f"Resize axes={list(axes)} with a run-time scales tensor; TensorRT needs axes 0..{rank - 1}",
                        "give scales for every axis (drop the axes attribute)")]
    return []


CHECKS = {
    "zero_point": _zero_point, "quantized_type": _quantized_type, "pool_rank": _pool_rank,
    "unit_dilations": _unit_dilations, "absent_outputs": _absent_outputs, "absent_inputs": _absent_inputs,
    "absent_attributes": _absent_attributes, "constant_input": _constant_input,
    "max_constant_input": _max_constant_input, "not_training": _not_training, "static_input": _static_input,
    "input_rank": _input_rank, "resize_axes": _resize_axes,
}


# -- the ONNX inputs against the optimization profile -------------------------------------------
def check_dims(model, profile: Profile) -> list[Problem]:
    """Dims the engine would need that the ONNX does not have, and named-dim conflicts."""
    model = load_model(model)
    initializers = {i.name for i in model.graph.initializer}
    onnx_inputs = {v.name: v for v in model.graph.input if v.name not in initializers}
    problems = []
    for name in onnx_inputs:
        if name not in profile.inputs:
            problems.append(Problem(f"input {name}", "dims", "the ONNX input has no optimization profile entry",
                                    "declare it in the recipe's [[inputs]] (or re-export so the ONNX matches the recipe)"))
    named: dict[str, list[tuple[str, int]]] = {}
    for name, p in profile.inputs.items():
        if name not in onnx_inputs:
            problems.append(Problem(f"input {name}", "dims", "the recipe declares this input but the ONNX has none",
                                    "re-export the artifact from this recipe (`deploykit export NAME --force`)"))
            continue
        dims = dims_of(onnx_inputs[name])
        if len(dims) != len(p.min):
            problems.append(Problem(f"input {name}", "dims", f"the ONNX input has rank {len(dims)}, the profile {len(p.min)}",
                                    "re-export the artifact from this recipe"))
            continue
        for axis, dim in enumerate(dims):
            wanted = {p.shape(label)[axis] for label in LABELS}
            if isinstance(dim, int) and wanted != {dim}:
                lo, hi = p.min[axis], p.max[axis]
                problems.append(Problem(f"input {name} axis {axis}", "dims",
                                        f"the ONNX fixes this axis at {dim} but the profile needs {lo}..{hi}",
                                        "re-export with this axis dynamic (`deploykit export NAME --force`), "
                                        "or make the recipe's dim static"))
            elif isinstance(dim, str):
                named.setdefault(dim, []).append((name, axis))
    for dim_name, uses in named.items():
        if len(uses) < 2:
            continue
        for label in LABELS:
            sizes = {f"{n} axis {a}": profile.inputs[n].shape(label)[a] for n, a in uses}
            if len(set(sizes.values())) > 1:
                listed = ", ".join(f"{k}={v}" for k, v in sizes.items())
                problems.append(Problem(f"dim {dim_name!r}", "dims",
                                        f"the ONNX names {len(uses)} axes {dim_name!r} (TensorRT requires equally-named "
                                        f"dims to be equal) but the {label} profile gives {listed}",
                                        "rename the ONNX dims to match the recipe's expressions (re-export)"))
                break
    return problems
