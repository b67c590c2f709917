"""The runtime API: load an artifact, run it on the best backend this machine has, get a dict of arrays.

    session = deploykit.runtime.load("artifacts/cbam")          # backend="auto"
    outputs = session.run({"x": np.zeros((2, 64, 32, 32), np.float32)})   # -> {"y": array}
    result = session.forward(feed)     # in the module's own structure: {"out": ..., "aux": [...]}

``auto`` tries, in order: a TensorRT engine whose sidecar matches this machine, onnxruntime on CUDA
(only if the session really runs on CUDA: onnxruntime-gpu falls back to CPU silently), onnxruntime
on CPU. Every backend that was passed over is recorded with the reason (``session.skipped``).

Feeds are checked against the manifest before they reach a backend: names, dtypes, ranks, static
sizes, the relations between inputs (FPN's C3 is 4*H where C5 is H) and each symbol's declared range,
so a bad feed is one DeployKitError line naming the input, the axis and the allowed values.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np

from .artifact import Artifact
from .backends import AUTO_ORDER, Backend
from .backends import BACKENDS as BACKEND_TABLE
from .errors import BackendUnavailable, DeployKitError, first_line
from .store.layout import PRECISION_MODELS
from .store.manifest import check_ranks
from .structure import rebuild
from .tensors.feeds import feed_symbols

# the backends this API runs an artifact on (the table's serve column); "auto" tries AUTO_ORDER
BACKENDS = ("auto", *(name for name, row in BACKEND_TABLE.items() if row.serve))  # = backends.choices("serve")


def _activate(backend: Backend, artifact: Artifact, precision: str, threads: int | None, spinning: bool = True):
    """The backend's runner on ``artifact``, entered; BackendUnavailable with the reason otherwise.

    The TensorRT runner probes TensorRT and the GPU in a subprocess and checks the engine's sidecar
    (TensorRT version, GPU, plan sha256) before it deserializes anything; the onnxruntime runner
    refuses a session that fell back to CPU."""
    runner = backend.open(artifact, precision, threads=threads, spinning=spinning)
    try:
        runner.__enter__()
    except DeployKitError as exc:
        raise BackendUnavailable(str(exc)) from None
    except Exception as exc:  # tensorrt / cuda raise their own types; keep the first line as the reason
        raise BackendUnavailable(f"{backend.name} cannot load {backend.file(precision)}: "
                                 f"{type(exc).__name__}: {first_line(exc)}") from None
    return runner


# -- the session ----------------------------------------------------------------------------------
class Session:
    """An artifact on one backend. Thread-safe: onnxruntime sessions run concurrently; TensorRT is serialised."""

    def __init__(self, artifact: Artifact, runner, backend: str, precision: str, skipped: dict[str, str]):
        self.artifact = artifact
        self.runner = runner
        self.backend = backend
        self.precision = precision
        self.skipped = skipped
        # dtypes as the backend declares them (an FP16 model may take float16); dims as the manifest declares them
        backend_dtypes = {m.name: np.dtype(m.dtype) for m in runner.input_metadata()}
        self.inputs = tuple(replace(t, dtype=backend_dtypes.get(t.name, t.dtype)) for t in artifact.inputs)
        self.outputs = artifact.outputs
        self.ranges = artifact.dims
        # One TensorRT execution context must not run two requests at once; onnxruntime's run() is thread-safe.
        self._lock = threading.Lock() if backend == "trt" else nullcontext()

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def fixed_symbols(self) -> dict[str, int]:
        return self.artifact.fixed_symbols()

    def describe(self) -> dict:
        return {"name": self.name, "dir": str(self.artifact.dir), "backend": self.backend, "precision": self.precision,
                **{k: v for k, v in self.runner.describe().items() if k != "runner"}, "skipped": self.skipped}

    # -- validation -------------------------------------------------------------------------------
    def check_feed(self, feed) -> dict[str, int]:
        """Raise DeployKitError unless ``feed`` fits the artifact; return the symbol values it implies."""
        return feed_symbols(feed, self.inputs, self.ranges, who=self.name, owner="artifact")

    # -- inference --------------------------------------------------------------------------------
    def run(self, feed: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Check ``feed``, run it, return ``{output_name: array}`` (all outputs, or those named)."""
        if outputs is not None:
            unknown = [n for n in outputs if n not in self.output_names]
            if unknown:
                raise DeployKitError(f"{self.name}: unknown output(s) {unknown} (outputs: {self.output_names})")
        self.check_feed(feed)
        contiguous = {n: np.ascontiguousarray(a) for n, a in feed.items()}
        with self._lock:
            result = self.runner.infer(contiguous)
        names = outputs if outputs is not None else self.output_names
        return {n: result[n] for n in names}

    __call__ = run

    def forward(self, feed: dict[str, np.ndarray]):
        """``run``, given back in the structure the module's forward returned (dicts, lists, tuples, Nones,
        namedtuples and dataclasses of the same names: deploykit/structure.py), as the manifest records it."""
        outputs = self.run(feed)
        described = self.artifact.manifest.get("output_structure")
        return rebuild(described, outputs) if described is not None else outputs

    def close(self) -> None:
        if self.runner is not None and self.runner.active:
            self.runner.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def load(artifact_dir: str | Path, backend: str = "auto", *, precision: str = "fp32",
         threads: int | None = None, spinning: bool = True) -> Session:
    """Open ``artifact_dir`` (written by ``deploykit export``) on ``backend`` ("auto" picks the best one here).

    ``spinning=False`` lets onnxruntime's idle threads sleep (for servers, whose own threads need the cores).
    """
    if backend not in BACKENDS:
        raise DeployKitError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISION_MODELS:
        raise DeployKitError(f"precision must be one of {', '.join(PRECISION_MODELS)}, got {precision!r}")
    artifact = Artifact.open(artifact_dir)
    skipped: dict[str, str] = {}
    for name in AUTO_ORDER if backend == "auto" else (backend,):
        try:
            runner = _activate(BACKEND_TABLE[name], artifact, precision, threads, spinning)
        except BackendUnavailable as exc:
            if backend != "auto":
                raise DeployKitError(f"{artifact.dir}: backend {name} is not available: {exc}") from None
            skipped[name] = str(exc)
            continue
        try:  # the manifest checks every feed: its ranks must be the model's, or each request fails in the backend
            check_ranks(artifact, {t.name: len(t.shape) for t in runner.input_metadata()})
        except DeployKitError:
            runner.__exit__(None, None, None)
            raise
        return Session(artifact, runner, name, precision, skipped)
    reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
    raise DeployKitError(f"{artifact.dir}: no backend can run this artifact ({reasons})")
