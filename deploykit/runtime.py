"""The runtime API: load an artifact, run it on the best backend this machine has, get a dict of arrays.

    session = deploykit.runtime.load("artifacts/cbam")          # backend="auto"
    outputs = session.run({"x": np.zeros((2, 64, 32, 32), np.float32)})   # -> {"y": array}

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
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .artifact import PRECISION_MODELS, Artifact, engine_name, precision_model
from .errors import DeployKitError
from .shapes import parse_dim, resolve_shape

BACKENDS = ("auto", "trt", "ort-cuda", "ort-cpu")
_AUTO_ORDER = ("trt", "ort-cuda", "ort-cpu")


@dataclass(frozen=True)
class TensorInfo:
    """One input or output as the manifest declares it: dims are ints or DimExprs (``"4*H"``)."""

    name: str
    dtype: np.dtype
    dims: tuple

    def shape(self, symbols: dict[str, int]) -> list[int]:
        """Sizes with -1 for every axis whose symbol is dynamic (the KServe/Triton convention)."""
        return [d if isinstance(d, int) else d.evaluate(symbols) if d.symbol in symbols else -1 for d in self.dims]

    def describe(self) -> str:
        return "(" + ", ".join(str(d) if isinstance(d, int) else d.text for d in self.dims) + ")"


@dataclass(frozen=True)
class SymbolRange:
    """What one symbol may be: a fixed value (static dim or --static export) or min..max step multiple_of."""

    name: str
    min: int
    max: int
    multiple_of: int = 1
    reason: str = ""
    opt: int | None = None  # the recipe's opt (TensorRT profiles want it)

    @property
    def is_fixed(self) -> bool:
        return self.min == self.max

    def check(self, value: int) -> str | None:
        """None when allowed, else what is wrong (for the error message)."""
        if self.is_fixed:
            return None if value == self.min else f"must be {self.min}" + (f" ({self.reason})" if self.reason else "")
        if not self.min <= value <= self.max:
            return f"is outside the artifact's range [{self.min}, {self.max}]"
        if value % self.multiple_of:
            return f"must be a multiple of {self.multiple_of} (range [{self.min}, {self.max}])"
        return None


def tensor_infos(entries: list[dict]) -> tuple[TensorInfo, ...]:
    infos = []
    for entry in entries:
        try:
            dims = tuple(parse_dim(d) for d in entry["dims"])
        except (KeyError, ValueError) as exc:
            raise DeployKitError(f"manifest entry {entry.get('name')!r} has unreadable dims: {exc}") from None
        infos.append(TensorInfo(entry["name"], np.dtype(entry.get("dtype", "float32")), dims))
    return tuple(infos)


def symbol_ranges(manifest: dict) -> dict[str, SymbolRange]:
    ranges = {}
    fixed_at = manifest.get("export_shape") if manifest.get("static") else None
    for name, spec in manifest["dims"].items():
        if "value" in spec:
            ranges[name] = SymbolRange(name, spec["value"], spec["value"], reason=spec.get("reason", "a static dim"))
        elif fixed_at and name in fixed_at:
            value = fixed_at[name]
            ranges[name] = SymbolRange(name, value, value, reason="the artifact was exported with --static")
        else:
            ranges[name] = SymbolRange(name, spec["min"], spec["max"], spec.get("multiple_of", 1), opt=spec.get("opt"))
    return ranges


# -- backends -------------------------------------------------------------------------------------
class BackendUnavailable(DeployKitError):
    """A backend cannot run here; ``auto`` records the reason and tries the next one."""


def _open_trt(artifact: Artifact, precision: str):
    """The TensorRT runner for this artifact's engine, or BackendUnavailable with the reason.

    deploykit.trt's runner probes TensorRT and the GPU in a subprocess and checks the engine's
    sidecar (TensorRT version, GPU, plan sha256) before it deserializes anything.
    """
    engine = artifact.path(engine_name(precision))
    if not engine.is_file():
        raise BackendUnavailable(f"no {engine.name} in {artifact.dir} "
                                 f"(build one with `deploykit build-trt {artifact.name}`)")
    try:
        from .trt.runner import TrtRunner
        from .trt.sidecar import read_sidecar
    except ImportError as exc:
        raise BackendUnavailable(f"the TensorRT runner is not available: {exc}") from None
    try:
        read_sidecar(engine)  # cheap first: no sidecar means no subprocess probe either
        runner = TrtRunner(engine)
        runner.__enter__()
    except DeployKitError as exc:
        raise BackendUnavailable(str(exc)) from None
    except Exception as exc:  # tensorrt / cuda raise their own types; keep the first line as the reason
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BackendUnavailable(f"TensorRT cannot load {engine.name}: {type(exc).__name__}: {first_line}") from None
    return runner


def _open_ort(artifact: Artifact, precision: str, device: str, threads: int | None):
    from .runners.ort_runner import OrtRunner

    model_file = precision_model(precision, "onnxruntime")  # the file verify checks and bench times
    if model_file not in artifact.manifest["files"]:
        hint = "deploykit export" if precision == "fp32" else "deploykit calibrate --target ort"
        raise BackendUnavailable(f"{artifact.dir} has no {model_file}; make it with `{hint} {artifact.name}`")
    artifact.check_files(model_file)
    if device == "cuda":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable(
                f"onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                f"(available: {', '.join(ort.get_available_providers())}; install the `gpu` extra on a CUDA machine)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    runner = OrtRunner(artifact.path(model_file), providers=providers, threads=threads)
    runner.__enter__()
    if device == "cuda" and runner.session.get_providers()[0] != "CUDAExecutionProvider":
        used = runner.session.get_providers()
        runner.__exit__(None, None, None)
        # onnxruntime-gpu falls back to CPU without an error when CUDA/cuDNN cannot be loaded.
        raise BackendUnavailable(f"onnxruntime fell back to {used} (CUDA or cuDNN libraries could not be loaded)")
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
        self.inputs = tuple(TensorInfo(i.name, backend_dtypes.get(i.name, i.dtype), i.dims)
                            for i in tensor_infos(artifact.manifest["inputs"]))
        self.outputs = tensor_infos(artifact.manifest["outputs"])
        self.ranges = symbol_ranges(artifact.manifest)
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
        return {n: r.min for n, r in self.ranges.items() if r.is_fixed}

    def describe(self) -> dict:
        return {"name": self.name, "dir": str(self.artifact.dir), "backend": self.backend, "precision": self.precision,
                **{k: v for k, v in self.runner.describe().items() if k != "runner"}, "skipped": self.skipped}

    # -- validation -------------------------------------------------------------------------------
    def check_feed(self, feed) -> dict[str, int]:
        """Raise DeployKitError unless ``feed`` fits the artifact; return the symbol values it implies."""
        if not isinstance(feed, dict):
            raise DeployKitError(f"{self.name}: inputs must be a dict of name -> numpy array, "
                                 f"got {type(feed).__name__}")
        missing = [n for n in self.input_names if n not in feed]
        extra = [n for n in feed if n not in self.input_names]
        if missing or extra:
            raise DeployKitError(f"{self.name}: input names do not match the model: missing {missing or 'none'}, "
                                 f"unexpected {extra or 'none'} (expected {self.input_names})")
        values: dict[str, int] = {}
        source: dict[str, str] = {}
        for info in self.inputs:
            array = feed[info.name]
            if not isinstance(array, np.ndarray):
                raise DeployKitError(f"{self.name}: input {info.name!r} must be a numpy array, "
                                     f"got {type(array).__name__}")
            if array.dtype != info.dtype:
                raise DeployKitError(f"{self.name}: input {info.name!r} has dtype {array.dtype}, expected {info.dtype} "
                                     f"(convert with .astype(np.{info.dtype.name}))")
            if array.ndim != len(info.dims):
                raise DeployKitError(f"{self.name}: input {info.name!r} has rank {array.ndim} {tuple(array.shape)}, "
                                     f"expected {len(info.dims)} {info.describe()}")
            for axis, (dim, got) in enumerate(zip(info.dims, array.shape)):
                where = f"input {info.name!r} axis {axis}"
                if isinstance(dim, int):
                    if got != dim:
                        raise DeployKitError(f"{self.name}: {where} is {got}, the model fixes it at {dim}")
                    continue
                value = Fraction(got) / dim.scale  # invert k*SYM or SYM/k exactly; a remainder is an error
                if value.denominator != 1:
                    raise DeployKitError(f"{self.name}: {where} is {got}, "
                                         f"which is not {dim.text} for any whole {dim.symbol}")
                if dim.symbol in values and values[dim.symbol] != value:
                    raise DeployKitError(
                        f"{self.name}: {where} is {got}, so {dim.symbol}={int(value)}"
                        f"{'' if dim.text == dim.symbol else f' ({dim.text})'}, but "
                        f"{source[dim.symbol]} gives {dim.symbol}={values[dim.symbol]}: inputs must agree "
                        f"(shapes {', '.join(i.name + i.describe() for i in self.inputs)})")
                values[dim.symbol] = int(value)
                source[dim.symbol] = where
        for symbol, value in values.items():
            problem = self.ranges[symbol].check(value) if symbol in self.ranges else None
            if problem:
                raise DeployKitError(f"{self.name}: {symbol}={value} (from {source[symbol]}) {problem}")
        # Belt and braces: every input's full shape follows from the symbols (uses the recipe's own evaluator).
        for info in self.inputs:
            if tuple(feed[info.name].shape) != resolve_shape(info.dims, values):
                raise DeployKitError(f"{self.name}: input {info.name!r} has shape {tuple(feed[info.name].shape)}, "
                                     f"expected {resolve_shape(info.dims, values)}")
        return values

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

    def close(self) -> None:
        if self.runner is not None and self.runner.active:
            self.runner.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def load(artifact_dir: str | Path, backend: str = "auto", *, precision: str = "fp32",
         threads: int | None = None) -> Session:
    """Open ``artifact_dir`` (written by ``deploykit export``) on ``backend`` ("auto" picks the best one here)."""
    if backend not in BACKENDS:
        raise DeployKitError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISION_MODELS:
        raise DeployKitError(f"precision must be one of {', '.join(PRECISION_MODELS)}, got {precision!r}")
    artifact = Artifact.open(artifact_dir)
    openers = {
        "trt": lambda: _open_trt(artifact, precision),
        "ort-cuda": lambda: _open_ort(artifact, precision, "cuda", threads),
        "ort-cpu": lambda: _open_ort(artifact, precision, "cpu", threads),
    }
    skipped: dict[str, str] = {}
    for name in _AUTO_ORDER if backend == "auto" else (backend,):
        try:
            runner = openers[name]()
        except BackendUnavailable as exc:
            if backend != "auto":
                raise DeployKitError(f"{artifact.dir}: backend {name} is not available: {exc}") from None
            skipped[name] = str(exc)
            continue
        return Session(artifact, runner, name, precision, skipped)
    reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
    raise DeployKitError(f"{artifact.dir}: no backend can run this artifact ({reasons})")
