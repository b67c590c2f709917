"""Is an onnxruntime output the PyTorch model's output? Judged against PyTorch's own fp32 noise floor.

Both PyTorch fp32 and onnxruntime fp32 are compared to a float64 run of the same module on the same
input. ``floor`` = max |torch fp32 - torch fp64| is the rounding error of an fp32 implementation of this
network; onnxruntime (other kernels, other summation order, folded BatchNorm) is expected at the same
order. An output is **correct** when max |ort - fp64| <= FLOOR_FACTOR * floor (or, for a network whose
floor is tiny, <= ABS_FLOOR_REL * max |fp64|). Export bugs (a baked pooling window, a position
embedding interpolated to the export size, a wrong padding) move the output by a sizeable fraction of
its range, 1e3..1e6 times the floor; the results record the ratio so the gap is visible.
Independent of deploykit (numpy and torch only).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

FLOOR_FACTOR = 10.0
ABS_FLOOR_REL = 1e-6


def reference(model: torch.nn.Module, x: np.ndarray) -> dict:
    """PyTorch fp32 and fp64 outputs at ``x`` (fp64 is None when the module does not run in double)."""
    with torch.no_grad():
        out32 = _first(model(torch.from_numpy(x))).numpy()
        try:
            model64 = copy.deepcopy(model).double()
            out64 = _first(model64(torch.from_numpy(x).double())).numpy()
        except Exception as exc:  # a module with a hard-coded float32 op
            return {"fp32": out32, "fp64": None, "fp64_error": _line(exc)}
    return {"fp32": out32, "fp64": out64, "fp64_error": None}


def judge(actual: np.ndarray, ref: dict) -> dict:
    """Error of ``actual`` against the reference, the floor, and the verdict (``correct`` bool)."""
    out32, out64 = ref["fp32"], ref["fp64"]
    if tuple(actual.shape) != tuple(out32.shape):
        return {"correct": False, "why": f"shape {tuple(actual.shape)} != PyTorch {tuple(out32.shape)}"}
    if not np.all(np.isfinite(actual)):
        return {"correct": False, "why": "non-finite values"}
    truth = out64 if out64 is not None else out32.astype(np.float64)
    err = float(np.abs(actual.astype(np.float64) - truth).max())
    err_vs_fp32 = float(np.abs(actual.astype(np.float64) - out32).max())
    scale = float(np.abs(truth).max())
    if out64 is not None:
        floor = float(np.abs(out32.astype(np.float64) - out64).max())
        limit = max(FLOOR_FACTOR * floor, ABS_FLOOR_REL * scale)
    else:  # no float64 run: fall back to deploykit's default fp32 tolerance scale
        floor = None
        limit = 1e-4 + 1e-4 * scale
    return {
        "correct": err <= limit,
        "max_abs_vs_fp64": err,
        "max_abs_vs_fp32": err_vs_fp32,
        "torch_fp32_floor": floor,
        "limit": limit,
        "ratio_to_floor": err / floor if floor else None,
        "output_scale": scale,
        # spread across the batch relative to the output range: ~0 means the logits ignore the input
        # and the comparison would prove little
        "input_sensitivity": float(truth.std(axis=0).max() / scale) if truth.shape[0] > 1 and scale else None,
        "why": "" if err <= limit else f"max abs {err:.3g} > limit {limit:.3g}",
    }


def _first(out):
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.detach()


def _line(exc: BaseException) -> str:
    """The exception's first line, plus the first line of its innermost cause (torch.onnx wraps the real
    error of torch.export in a generic TorchExportError)."""
    text = _first_line(exc)
    cause = exc
    while cause.__cause__ is not None or cause.__context__ is not None and not cause.__suppress_context__:
        cause = cause.__cause__ or cause.__context__
    if cause is not exc:
        text += f" <- {_first_line(cause)}"
    return text[:600]


def _first_line(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch colours its messages
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
