"""Which file holds what in an artifact folder: one name per file, so every command agrees.

An artifact is ``<out>/<name>/``: the exported model and its tensors, the manifest that records every file's
sha256, and what later steps add next to them (models per precision, calibration, engines, reports).
"""

from __future__ import annotations

from ..errors import DeployKitError

MODEL = "model.onnx"
WEIGHTS = "weights.pt"
BUFFERS = "buffers.pt"  # non-persistent buffers, when the module has any (weights.pt stays a plain state_dict)
MANIFEST = "manifest.json"
RECIPE = "recipe.toml"  # the recipe the artifact was exported from, copied: the artifact is self-contained
LOG = "export.log"
REFERENCE = "reference.npz"  # PyTorch's outputs at verify's shapes (reference.py)

FP16_MODEL = "model.fp16.onnx"
INT8_MODEL = "model.int8.onnx"  # Q/DQ in TensorRT's rules (deploykit calibrate --target trt)
INT8_ORT_MODEL = "model.int8.ort.onnx"  # Q/DQ chosen and shaped for onnxruntime CPU (--target ort)
CALIBRATION_CACHE = "calibration.cache"
CALIBRATION_RANGES = "calibration.json"

PRECISIONS = ("fp32", "fp16", "int8")  # the one list: recipes' tolerances, verify, build-trt and package take it
PRECISION_MODELS = dict(zip(PRECISIONS, (MODEL, FP16_MODEL, INT8_MODEL)))
RUNTIMES = ("onnxruntime", "tensorrt")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise DeployKitError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def precision_model(precision: str, runtime: str = "onnxruntime") -> str:
    """The ONNX file a runtime runs at a precision: INT8 has one file per runtime (they differ on
    purpose: calibration/qdq.py vs calibration/ort_int8.py); FP32 and FP16 share theirs."""
    check_precision(precision)
    if precision == "int8" and runtime == "onnxruntime":
        return INT8_ORT_MODEL
    return PRECISION_MODELS[precision]


def precision_files(files) -> dict:
    """Which file each runtime runs at each precision, among ``files`` (the ones an artifact has)."""
    return {precision: {runtime: precision_model(precision, runtime) for runtime in RUNTIMES
                        if precision_model(precision, runtime) in files}
            for precision in PRECISION_MODELS}


def engine_name(precision: str) -> str:
    return f"model.{precision}.plan"
