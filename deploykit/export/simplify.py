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

    return onnxslim.slim(model)


SIMPLIFIERS = {"onnxsim": run_onnxsim, "onnxslim": run_onnxslim}
