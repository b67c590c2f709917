"""Simplification with onnxsim, falling back to onnxslim; a candidate is kept only if it still checks out."""

from __future__ import annotations

import onnx


def run_onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxsim import simplify

    # check_n=0: onnxsim's own random check cannot draw dynamic shapes; deploykit's parity check follows.
    simplified, ok = simplify(model, check_n=0)
    if not ok:
        raise RuntimeError("onnxsim reported failure")
    return simplified


def run_onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    slimmed = onnxslim.slim(model)
    # onnxslim 0.1.98 lists some value_infos twice; onnxconverter-common's FP16 pass then retypes one copy
    # and not the other (mhsa: "MatMul B has inconsistent type"). One entry per tensor, the first.
    seen, unique = set(), []
    for info in slimmed.graph.value_info:
        if info.name not in seen:
            seen.add(info.name)
            unique.append(info)
    if len(unique) != len(slimmed.graph.value_info):
        slimmed.graph.ClearField("value_info")
        slimmed.graph.value_info.extend(unique)
    return slimmed


SIMPLIFIERS = {"onnxsim": run_onnxsim, "onnxslim": run_onnxslim}
