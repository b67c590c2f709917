"""``CalibrateOptions``: how ``calibrate_artifact`` calibrates, as one frozen value (``deploykit calibrate``'s flags),
checked in one place. Light on purpose (no onnx, no numpy): the CLI takes its choices from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeployKitError

DEFAULT_METHOD = "minmax"
TARGETS = ("all", "ort", "trt")  # which INT8 model(s): onnxruntime's, TensorRT's, or both
DEFAULT_HEADROOM = 8.0  # FP16: a node stays FP32 when its range comes within 1/8 of FP16's max (fp16.py)


@dataclass(frozen=True)
class CalibrateOptions:
    data: str | Path | None = None  # a folder of images or an .npz of inputs (else synthetic)
    synthetic: int | None = None  # that many synthetic samples (recorded as synthetic)
    method: str | None = None  # None: the recipe's, else DEFAULT_METHOD
    per_channel: bool = False  # per-channel weight scales in TensorRT's Q/DQ model
    fp16: bool = True  # also write model.fp16.onnx
    force: bool = False  # overwrite files deploykit did not write (or that changed since)
    reuse: bool = False  # the ranges calibration.json holds, if its provenance matches
    trt_version: str | None = None  # the TensorRT the cache is for (None: the installed one, else the default)
    batch_size: int | None = None
    seed: int = 0  # of the synthetic data
    synthetic_shapes: str = "sweep"  # synthetic samples at the sweep's shapes, or at "opt" only
    headroom: float = DEFAULT_HEADROOM  # FP16: a node stays FP32 when its range comes this close to FP16's max
    target: str = "all"
    threads: int | None = 2  # onnxruntime threads for the accuracy and speed checks
    method_settings: dict = field(default_factory=dict)  # the method's own settings (ranges.settings_for)

    def check(self) -> None:
        if self.target not in TARGETS:
            raise DeployKitError(f"--target must be one of {', '.join(TARGETS)}, got {self.target!r}")
