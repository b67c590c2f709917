"""The explicit-quantization INT8 model: onnxruntime's ``quantize_static`` in QDQ format.

Chosen so one file serves onnxruntime CPU, TensorRT 10 and TensorRT 11 (which only takes Q/DQ):
- symmetric INT8 activations and weights, so every zero-point is 0 (TensorRT requires it);
- ``QuantizeBias: False``: biases stay float (a bias DequantizeLinear from INT32 is rejected by
  TensorRT's ONNX parser);
- weights stored as INT8 initializers behind a DequantizeLinear (TensorRT's "pre-quantized weights");
- attention softmax and the MatMul that reads its probabilities stay float (``attention_float_nodes``):
  probabilities span 1/NK..1 over a dynamic sequence length, and one per-tensor INT8 scale either
  clips them (short sequences) or rounds them to zero (onnxruntime fixes the softmax output scale at
  1/127, so at NK=256 a flat attention of 1/256 quantizes to 0 and the output vanishes).
The ranges are the ones ``compute_ranges`` measured (handed over as ORT's calibration cache), so the
Q/DQ scales, the TensorRT cache and calibration.json all hold the same numbers.

``quant_pre_process`` is not run: it renames/fuses tensors (the TensorRT cache must name model.onnx's
tensors) and deploykit's exports are already simplified and shape-inferable.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import onnx
from onnx import TensorProto, numpy_helper

from ..errors import DeployKitError, first_line
from ..environment import quiet
from .ranges import private_copy, Ranges

QDQ_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}


def attention_float_nodes(model: onnx.ModelProto) -> list[dict]:
    """Softmax nodes and the MatMul/Gemm nodes reading their output directly, with the reason."""
    softmax = [n for n in model.graph.node if n.op_type in ("Softmax", "LogSoftmax")]
    probabilities = {o for n in softmax for o in n.output}
    kept = [{"name": n.name, "op_type": n.op_type, "reason": "attention softmax: probabilities span 1/NK..1"}
            for n in softmax]
    kept += [{"name": n.name, "op_type": n.op_type, "reason": "reads softmax probabilities (attention x V)"}
             for n in model.graph.node if n.op_type in ("MatMul", "Gemm", "Einsum") and set(n.input) & probabilities]
    return kept


def run_quantize_static(model: str | Path | onnx.ModelProto, ranges: Ranges, **options) -> onnx.ModelProto:
    """onnxruntime's ``quantize_static`` in QDQ format with ``ranges`` as its calibration (so every
    scale is one compute_ranges measured), ``options`` passed through; failures are one line."""
    from onnxruntime.quantization import QuantFormat, quantize_static, save_tensors_data

    with tempfile.TemporaryDirectory(prefix="deploykit-qdq-") as tmp, quiet():
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges.to_ort(), cache)
        out = Path(tmp) / "quantized.onnx"
        if isinstance(model, onnx.ModelProto):
            source = Path(tmp) / "model.onnx"
            onnx.save(model, str(source))
        else:  # quantize_static writes <model>-inferred.onnx next to its input: only in this private folder
            source = private_copy(model, tmp)
        try:
            quantize_static(str(source), str(out), calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                            calibrate_method=ranges.to_ort().calibration_method, calibration_cache_path=str(cache),
                            **options)
        except Exception as exc:  # quantize_static raises ValueError/RuntimeError/ORT types alike
            raise DeployKitError(f"onnxruntime quantize_static failed: {first_line(exc)}") from None
        return onnx.load(str(out))


def quantize_qdq(model_path: str | Path, ranges: Ranges, *, per_channel: bool = False,
                 exclude: list[str] = ()) -> onnx.ModelProto:
    """model.onnx + ranges -> the Q/DQ INT8 model (checked by ``qdq_problems`` before it is returned)."""

    from onnxruntime.quantization import QuantType

    model = run_quantize_static(str(model_path), ranges, per_channel=per_channel, activation_type=QuantType.QInt8,
                                weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude),
                                extra_options=dict(QDQ_OPTIONS))
    problems = qdq_problems(model)
    if problems:
        raise DeployKitError(f"the Q/DQ model is not TensorRT-consumable: {problems[0]} (+{len(problems) - 1} more)")
    return model


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    found = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:  # Constant nodes hold scales/zero-points in some exports
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = node.attribute[0].t
    return found


def qdq_problems(model: onnx.ModelProto) -> list[str]:
    """What would stop TensorRT (or break the symmetric-INT8 contract): non-zero or non-INT8
    zero-points, INT32 DequantizeLinear inputs (quantized biases), non-positive scales."""
    inits = _initializers(model)
    problems = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(node.input) > 2 and node.input[2]:
            zero_point = inits.get(node.input[2])
            if zero_point is None:
                problems.append(f"{node.name}: zero-point {node.input[2]!r} is not a constant")
            elif zero_point.data_type != TensorProto.INT8:
                kind = TensorProto.DataType.Name(zero_point.data_type)
                problems.append(f"{node.name}: zero-point type {kind}, not INT8")
            elif numpy_helper.to_array(zero_point).any():
                problems.append(f"{node.name}: non-zero zero-point")
        scale = inits.get(node.input[1])
        if scale is not None and not (numpy_helper.to_array(scale) > 0).all():
            problems.append(f"{node.name}: scale <= 0")
        if node.op_type == "DequantizeLinear":
            source = inits.get(node.input[0])
            if source is not None and source.data_type == TensorProto.INT32:
                problems.append(f"{node.name}: dequantizes an INT32 initializer (a quantized bias)")
    return problems


def qdq_summary(model: onnx.ModelProto) -> dict:
    """Counts for the manifest: Q/DQ nodes, and which operators now take dequantized inputs."""
    producers = {out: node for node in model.graph.node for out in node.output}
    quantized = collections.Counter()
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input):
            quantized[node.op_type] += 1
    kinds = collections.Counter(n.op_type for n in model.graph.node)
    return {"quantize_linear": kinds["QuantizeLinear"], "dequantize_linear": kinds["DequantizeLinear"],
            "quantized_ops": dict(sorted(quantized.items()))}
