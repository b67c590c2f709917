"""Which ONNX, builder flags and calibrator a precision needs on a TensorRT version.

TensorRT 10: weakly typed by default; FP16 is ``BuilderFlag.FP16`` on the FP32 ONNX; INT8 is
``BuilderFlag.INT8`` with either the explicit Q/DQ model (preferred: the calibrator API is
deprecated since 10.1) or the FP32 ONNX plus the shared calibration cache served by a calibrator.
TensorRT 11 removed the precision flags and the calibrator: every network is strongly typed, so
FP16 means model.fp16.onnx and INT8 means model.int8.onnx (Q/DQ), both from ``deploykit calibrate``.
Sources: TensorRT 10.x->11.x Python migration guide (docs.nvidia.com/deeplearning/tensorrt/latest/
api/migration/tensorrt-10x-to-11x-python-api-reference.html) and TOOLCHAIN.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import DeployKitError
from ..store.layout import CALIBRATION_CACHE, FP16_MODEL, INT8_MODEL, MODEL, check_precision
from .onnx_support import TrtTarget, parse_version

INT8_SOURCES = ("auto", "qdq", "cache")


@dataclass(frozen=True)
class PrecisionPlan:
    precision: str
    path: str                  # short id recorded in the sidecar, e.g. "trt10-flag-fp16"
    onnx: str                  # the artifact file the network is parsed from
    flags: tuple[str, ...]     # BuilderFlag names to set (none on TensorRT 11)
    strongly_typed: bool
    tensorrt_major: int        # the TensorRT major the flags and ONNX were chosen for (10 and 11 differ)
    calibration_cache: str | None = None
    clear_flags: tuple[str, ...] = field(default=())  # e.g. TF32 for an FP32 build judged at FP32 tolerances
    description: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def plan_precision(precision: str, target: TrtTarget, available: set[str], int8_source: str = "auto") -> PrecisionPlan:
    """The build path for ``precision``; ``available`` is the set of files in the artifact folder.

    Raises DeployKitError naming the missing file (``deploykit calibrate`` makes them).
    """
    check_precision(precision)
    if int8_source not in INT8_SOURCES:
        raise DeployKitError(f"--int8-source must be one of {', '.join(INT8_SOURCES)}, got {int8_source!r}")
    v = target.major
    if precision == "fp32":
        # TF32 is on by default in TensorRT; an FP32 engine is judged at FP32 tolerances (Polygraphy clears it too).
        return PrecisionPlan("fp32", f"trt{v}-fp32", MODEL, (), target.strongly_typed, v, clear_flags=("TF32",),
                             description=f"FP32 from {MODEL} (TF32 disabled)")
    if target.strongly_typed:
        wanted = FP16_MODEL if precision == "fp16" else INT8_MODEL
        if precision == "int8" and int8_source == "cache":
            raise DeployKitError(f"{target.describe()} removed the INT8 calibrator: a calibration cache cannot be used; "
                                 f"build from {INT8_MODEL} (Q/DQ) made by `deploykit calibrate NAME`")
        _require(wanted, available, f"{target.describe()} has no precision builder flags; {precision.upper()} needs")
        kind = "FP16 ONNX" if precision == "fp16" else "explicit Q/DQ ONNX"
        return PrecisionPlan(precision, f"trt{v}-strongly-typed-{precision}", wanted, (), True, v,
                             description=f"{precision.upper()} from {wanted} ({kind}, strongly typed)")
    if precision == "fp16":
        return PrecisionPlan("fp16", "trt10-flag-fp16", MODEL, ("FP16",), False, v,
                             description=f"FP16 via BuilderFlag.FP16 on {MODEL}")
    use_qdq = int8_source == "qdq" or (int8_source == "auto" and INT8_MODEL in available)
    if use_qdq:
        _require(INT8_MODEL, available, "INT8 from explicit Q/DQ needs")
        return PrecisionPlan("int8", "trt10-qdq-int8", INT8_MODEL, ("INT8",), False, v,
                             description=f"INT8 via BuilderFlag.INT8 from {INT8_MODEL} (explicit Q/DQ)")
    if int8_source == "auto" and CALIBRATION_CACHE not in available:
        raise DeployKitError(f"INT8 needs {INT8_MODEL} (Q/DQ) or {CALIBRATION_CACHE}; both are missing")
    _require(CALIBRATION_CACHE, available, "INT8 from the calibration cache needs")
    return PrecisionPlan("int8", "trt10-calibration-cache-int8", MODEL, ("INT8",), False, v,
                         calibration_cache=CALIBRATION_CACHE,
                         description=f"INT8 via BuilderFlag.INT8 on {MODEL} with scales from {CALIBRATION_CACHE} "
                                     "(a cache-only calibrator of the cache's algorithm)")


def check_installed_major(plan: PrecisionPlan, trt_version: str) -> None:
    """Refuse to build ``plan`` with a TensorRT of another major: 10 and 11 differ in flags, calibrators and typing
    (BuilderFlag.FP16 does not exist on 11), so the build would fail half-way with an AttributeError."""
    installed = parse_version(trt_version)[0]
    if installed != plan.tensorrt_major:
        raise DeployKitError(f"the {plan.precision} build ({plan.path}) was planned for TensorRT {plan.tensorrt_major}.x "
                             f"but TensorRT {trt_version} is installed; re-run the checks for the installed version "
                             f"(without --trt-version)")


def _require(filename: str, available: set[str], why: str) -> None:
    if filename not in available:
        raise DeployKitError(f"{why} {filename}, which is missing")
