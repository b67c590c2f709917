"""onnxruntime: CPU by default; CUDA / TensorRT execution providers when asked and present.

The providers reported are the ones the session really uses (``session.get_providers()``):
onnxruntime-gpu silently falls back to CPU when CUDA is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DeployKitError
from .base import Runner, TensorMeta

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def session_options(threads: int | None = None, optimization: str = "all"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


class OrtRunner(Runner):
    name = "ort"

    def __init__(self, model: str | Path | bytes, providers: list[str] | None = None,
                 threads: int | None = None, optimization: str = "all"):
        super().__init__()
        self.model = model
        self.requested = providers or ["CPUExecutionProvider"]
        self.threads = threads
        self.optimization = optimization
        self.session = None

    def activate(self) -> None:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)  # failures surface as exceptions; keep ORT's own log quiet
        source = self.model if isinstance(self.model, bytes) else str(self.model)
        available = ort.get_available_providers()
        providers = [p for p in self.requested if p in available] or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(
                source, sess_options=session_options(self.threads, self.optimization), providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise DeployKitError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from None

    def deactivate(self) -> None:
        self.session = None

    def input_metadata(self) -> list[TensorMeta]:
        return [
            TensorMeta(i.name, np.dtype(_ORT_TYPES.get(i.type, np.float32)),
                       tuple(d if isinstance(d, int) else (d or None) for d in i.shape))
            for i in self.session.get_inputs()
        ]

    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def infer_impl(self, feed):
        names = self.output_names()
        return dict(zip(names, self.session.run(names, feed)))

    def describe(self) -> dict:
        import onnxruntime as ort

        return {
            "runner": self.name,
            "onnxruntime": ort.__version__,
            "providers_requested": self.requested,
            "providers_used": self.session.get_providers() if self.session else [],
        }
