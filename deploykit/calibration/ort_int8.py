"""The INT8 model for onnxruntime CPU (``model.int8.ort.onnx``): onnxruntime's ``quantize_static`` in
QDQ format, in the form its x86/ARM kernels run, written exactly as it is run (no load-time rewrite).

It differs from the TensorRT model (qdq.py) on purpose:
- activations UINT8, asymmetric (zero-point from the measured range): onnxruntime fuses
  ``DQ -> Conv -> Q`` into QLinearConv only for UINT8 activations, and a ReLU/SiLU output spends
  all 256 levels instead of the upper half;
- weights INT8, symmetric, **7-bit** (``reduce_range``: -64..64), per output channel;
- biases INT32 (QLinearConv takes them; TensorRT's parser would not).

Why 7-bit weights: onnxruntime's U8S8 kernels on x86 CPUs without VNNI (AVX2, AVX-512 without
VNNI, SSE4.1) multiply with VPMADDUBSW, which adds two u8*s8 products into a *saturating* int16.
With 8-bit weights 255*127*2 = 64770 > 32767: the fused kernels then compute another function than
the model (measured on an AVX2 EPYC: 5.58 max abs error where one output step is 0.05). With
|w| <= 64, 255*64*2 = 32640 fits, so every CPU computes the same model (VNNI/AMX/ARM dot products
accumulate in int32 and never saturated). onnxruntime uses the same bound ([-64, 63]) for its own
``session.x64quantprecision`` check. U8U8 is exact too but runs a slower kernel on AVX2.
``saturation_problems`` checks the bound on every written model.

SiLU (``x * sigmoid(x)``) is first written as onnxruntime's contrib op ``com.microsoft.QuickGelu``
(alpha 1: exactly ``x * sigmoid(x)``; onnxruntime's own FP32 optimizer makes the same fusion). In a Q/DQ
graph onnxruntime cannot fuse it any more: the quantized tensor feeding both Sigmoid and Mul gets
one DequantizeLinear per reader (its EnsureUniqueDQForNodeUnit pass), so the float SiLU would run as
two DQ + Sigmoid + Mul (composite's compute-only model, profiler: DequantizeLinear x60 359 us, Mul x30 226,
Sigmoid x26 172; with QuickGelu: DequantizeLinear x40 250, QuickGelu x20 165, Mul x10 84, Sigmoid x6 33).
The contrib op is fine here: this file is only for onnxruntime.

Which nodes are quantized is chosen per model by measurement (ort_search.py); this module only
builds a model for a given choice and describes the choices a graph offers (``patterns``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import DeployKitError
from .qdq import run_quantize_static
from .ranges import Ranges

# |weight| bound under which VPMADDUBSW's int16 pair sums cannot saturate: 255 * 64 * 2 = 32640 <= 32767
WEIGHT_BOUND = 64
ORT_OPTIONS = {"ActivationSymmetric": False, "WeightSymmetric": True}
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
GATE_OPS = ("Sigmoid", "Mul")  # SiLU (x * sigmoid(x)) and attention gates: one choice, both or neither
# Ops that move values without arithmetic: quantized they only pass UINT8 through, so they are one choice
DATA_MOVEMENT_OPS = ("Flatten", "Gather", "GatherElements", "Pad", "Reshape", "Slice", "Split", "Squeeze", "Transpose",
                     "Unsqueeze", "Where")


@dataclass(frozen=True)
class Pattern:
    """A group of nodes quantized together or not at all."""

    name: str
    nodes: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"name": self.name, "nodes": len(self.nodes)}


def quantizable_op_types() -> set[str]:
    """The op types quantize_static quantizes by default (its QLinear and QDQ registries)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return set(QDQRegistry) | set(QLinearOpsRegistry)


def patterns(model: onnx.ModelProto, kept_float: set[str] = frozenset()) -> tuple[Pattern | None, list[Pattern]]:
    """The compute nodes (always quantized: that is where INT8 pays) and the optional groups.

    Optional groups are per op type (Add, Concat, Resize, MaxPool, ...), except Sigmoid and Mul,
    which form one group (quantizing one without the other only adds Q/DQ pairs between them), and the
    data-movement ops (Reshape, Transpose, Slice, ...), which form another.
    Nodes in ``kept_float`` (attention softmax and its consumer, qdq.attention_float_nodes) stay out.
    """
    allowed = quantizable_op_types()
    by_type: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.name and node.name not in kept_float and node.op_type in allowed:
            group = ("compute" if node.op_type in COMPUTE_OPS else "Sigmoid+Mul" if node.op_type in GATE_OPS
                     else "data movement" if node.op_type in DATA_MOVEMENT_OPS else node.op_type)
            by_type.setdefault(group, []).append(node.name)
    compute = by_type.pop("compute", None)
    optional = [Pattern(name, tuple(nodes)) for name, nodes in sorted(by_type.items())]
    return (Pattern("compute", tuple(compute)) if compute else None), optional


def silu_as_quickgelu(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy with every ``Mul(x, Sigmoid(x))`` (Sigmoid read only by that Mul) as one QuickGelu(alpha=1)
    named after the Mul and writing the Mul's output (so calibration ranges still name it)."""
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    graph = rewritten.graph
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    pairs = []
    for sigmoid in graph.node:
        if sigmoid.op_type != "Sigmoid" or sigmoid.output[0] in outputs:
            continue
        users = readers.get(sigmoid.output[0], [])
        if len(users) == 1 and users[0].op_type == "Mul" and sorted(users[0].input) == sorted(
                [sigmoid.input[0], sigmoid.output[0]]):
            pairs.append((sigmoid, users[0]))
    for sigmoid, mul in pairs:
        fused = helper.make_node("QuickGelu", [sigmoid.input[0]], [mul.output[0]], name=mul.name,
                                 domain="com.microsoft", alpha=1.0)
        graph.node.insert(list(graph.node).index(mul), fused)
        graph.node.remove(mul)
        graph.node.remove(sigmoid)
    if pairs and not any(o.domain == "com.microsoft" for o in rewritten.opset_import):
        rewritten.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return (rewritten if pairs else model), len(pairs)


def quantize_ort(model: onnx.ModelProto, ranges: Ranges, nodes: list[str], *, per_channel: bool = True) -> onnx.ModelProto:
    """A float model (model.onnx, or its ``silu_as_quickgelu`` form) + ranges -> the onnxruntime Q/DQ
    model quantizing exactly ``nodes``."""
    from onnxruntime.quantization import QuantType

    if not nodes:
        raise DeployKitError("no node to quantize for onnxruntime")
    types = sorted({n.op_type for n in model.graph.node if n.name in set(nodes)})
    quantized = run_quantize_static(model, ranges, op_types_to_quantize=types, nodes_to_quantize=list(nodes),
                                    per_channel=per_channel, reduce_range=True, activation_type=QuantType.QUInt8,
                                    weight_type=QuantType.QInt8, extra_options=dict(ORT_OPTIONS))
    problems = saturation_problems(quantized)
    if problems:
        raise DeployKitError(f"the onnxruntime INT8 model could saturate on x86 CPUs without VNNI: {problems[0]}")
    return quantized


def saturation_problems(model: onnx.ModelProto) -> list[str]:
    """What would make onnxruntime's U8S8 kernels compute another function on some CPU: an INT8
    weight beyond +-64, or a quantized activation that is not UINT8 (INT8 activations are shifted to
    UINT8 by onnxruntime itself only in some graph shapes)."""
    inits = {i.name: i for i in model.graph.initializer}
    problems = []
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            weight = inits[node.input[0]]
            if weight.data_type == TensorProto.INT8:
                values = numpy_helper.to_array(weight)
                if values.size and int(np.abs(values.astype(np.int16)).max()) > WEIGHT_BOUND:
                    problems.append(f"{node.name}: INT8 weight beyond +-{WEIGHT_BOUND}")
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and len(node.input) > 2:
            zero = inits.get(node.input[2])
            if zero is not None and zero.data_type != TensorProto.UINT8:
                problems.append(f"{node.name}: activation quantized to {TensorProto.DataType.Name(zero.data_type)}")
    return problems
