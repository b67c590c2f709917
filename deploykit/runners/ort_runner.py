"""onnxruntime: CPU by default; CUDA / TensorRT execution providers when asked.

onnxruntime-gpu silently falls back to CPU when CUDA, cuDNN or TensorRT cannot be loaded; so the
runner checks the provider the session really uses (``session.get_providers()[0]``) and raises
BackendUnavailable when it is not the one asked for. Every consumer (verify, bench, the runtime)
relies on that one check.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendUnavailable, DeployKitError, first_line
from ..onnx_graph import axis_of, numpy_dtype_of_type_string
from ..recipe.spec import TensorSpec
from .base import Runner

def session_options(threads: int | None = None, optimization: str = "all", spinning: bool = True):
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
    if not spinning:
        # idle intra-op threads sleep instead of spinning: a server's own threads (HTTP/gRPC decoding)
        # need those cores between runs (measured: composite, batching, concurrency 16: 1.35x req/s)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


class OrtRunner(Runner):
    name = "ort"

    def __init__(self, model: str | Path | bytes, providers: list[str] | None = None,
                 threads: int | None = None, optimization: str = "all", spinning: bool = True):
        super().__init__()
        self.spinning = spinning
        self.model = model
        self.requested = providers or ["CPUExecutionProvider"]
        self.threads = threads
        self.optimization = optimization
        self.session = None

    def activate(self) -> None:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)  # failures surface as exceptions; keep ORT's own log quiet
        source = self.model if isinstance(self.model, bytes) else str(self.model)
        wanted, available = self.requested[0], ort.get_available_providers()
        if wanted not in available:
            raise BackendUnavailable(f"onnxruntime {ort.__version__} has no {wanted} (available: {', '.join(available)}; "
                                     "install the `gpu` extra on a machine with CUDA)")
        providers = [p for p in self.requested if p in available]
        try:
            self.session = ort.InferenceSession(
                source, sess_options=session_options(self.threads, self.optimization, self.spinning),
                providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise DeployKitError(f"onnxruntime cannot load the model: {first_line(exc)}") from None
        used = self.session.get_providers()
        if used[0] != wanted:
            # onnxruntime-gpu falls back to CPU without an error when CUDA/cuDNN/TensorRT cannot be loaded
            self.session = None
            raise BackendUnavailable(f"onnxruntime fell back to {', '.join(used)}: {wanted} could not be loaded "
                                     "(CUDA, cuDNN or TensorRT libraries missing or mismatched)")

    def deactivate(self) -> None:
        self.session = None

    def input_metadata(self) -> list[TensorSpec]:
        return [TensorSpec(i.name, tuple(axis_of(d) for d in i.shape), dtype=numpy_dtype_of_type_string(i.type))
                for i in self.session.get_inputs()]

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
