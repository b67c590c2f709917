"""onnxruntime: CPU by default; CUDA / TensorRT execution providers when asked.

onnxruntime-gpu silently falls back to CPU when CUDA, cuDNN or TensorRT cannot be loaded; so the
runner checks the provider the session really uses (``session.get_providers()[0]``) and raises
BackendUnavailable when it is not the one asked for. Every consumer (verify, bench, the runtime)
relies on that one check.

``ort_session`` is the only place deploykit makes an ``InferenceSession`` (the runner, calibration's probes,
worth and speed sessions, verify's divergence search, bench's operator profile): each caller says only what
differs (providers, threads, graph optimization level, spinning, profiling, the optimized-graph file).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendUnavailable, DeployKitError, first_line
from ..onnx_graph import axis_of, numpy_dtype_of_type_string
from ..tensors.spec import TensorSpec
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


def ort_session(model: str | Path | bytes, providers=("CPUExecutionProvider",), *, threads: int | None = None,
                optimization: str = "all", spinning: bool = True, profile_prefix: str | None = None,
                optimized_path: str | Path | None = None):
    """The one constructor of an onnxruntime ``InferenceSession`` in deploykit (Polygraphy's ``SessionFromOnnx``).

    ``model``: a path or the serialized bytes. ``optimization``: disable | basic | extended | all (graph
    optimization level); ``threads``: intra-op threads (inter-op 1), onnxruntime's default when None;
    ``spinning=False``: idle threads sleep; ``profile_prefix``: onnxruntime's per-operator profiling into files
    with that prefix (``session.end_profiling()``); ``optimized_path``: onnxruntime writes the graph it will run
    there. Errors are onnxruntime's own: callers that face users (OrtRunner) turn them into one line."""
    import onnxruntime as ort

    options = session_options(threads, optimization, spinning)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=list(providers))


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
        wanted, available = self.requested[0], ort.get_available_providers()
        if wanted not in available:
            raise BackendUnavailable(f"onnxruntime {ort.__version__} has no {wanted} (available: {', '.join(available)}; "
                                     "install the `gpu` extra on a machine with CUDA)")
        providers = [p for p in self.requested if p in available]
        try:
            self.session = ort_session(self.model, providers, threads=self.threads, optimization=self.optimization,
                                       spinning=self.spinning)
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
