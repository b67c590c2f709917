"""The one backend table. Every backend name a command or API takes is a row here and means the same
everywhere: ``verify --backend``, ``bench --backends``, ``runtime.load(backend=)``, ``serve --backend``
and ``package --backend``.

    torch     PyTorch eager on the exported weights (weights.pt): the reference
    ort-cpu   onnxruntime, CPU execution provider
    ort-cuda  onnxruntime, CUDA execution provider (must really run on CUDA: no silent CPU fallback)
    ort-trt   onnxruntime, TensorRT execution provider (likewise)
    ref       onnx's ReferenceEvaluator: slow, independent second opinion on small shapes
    trt       a TensorRT engine built by ``deploykit build-trt``

Precision (fp32 | fp16 | int8) is a separate axis: it picks the artifact file a backend runs. A
*target* is a backend at a precision, written ``ort-cpu/int8`` (``ort-cpu`` alone is fp32).

What a backend can do is a column of its row, and every command derives its choices from the columns
(``names(capability)``, ``choices(capability)``), so adding a backend is one row:

    verify                ``deploykit verify --backend`` can check it against PyTorch
    serve                 ``runtime.load(backend=)`` and ``deploykit serve --backend`` can run it
    bench                 ``deploykit bench --backends`` can time it
    triton_platform       Triton runs its file as this platform; ``deploykit package --backend`` takes it
    triton_instance_kind  the instance group ``package`` pins Triton to (None: Triton places the model)
    auto_rank             its place in ``auto`` (runtime.load, serve: 1 is tried first; None: never chosen)
    int8_rules            whose INT8 rules its ONNX follows (onnxruntime's or TensorRT's)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from .artifact import Artifact
from .errors import BackendUnavailable, DeployKitError
from .store.layout import PRECISIONS, WEIGHTS, check_precision, engine_name, precision_model
from .trt.probe import probe
from .trt.sidecar import read_sidecar


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str  # which runner: "torch" | "ort" | "ref" | "trt"
    description: str
    providers: tuple[str, ...] = ()  # onnxruntime execution providers, most wanted first
    triton_platform: str | None = None  # what Triton runs this backend's file as (None: Triton cannot)
    # whose INT8 rules its ONNX follows: onnxruntime's kernels get the model made for them
    # (model.int8.ort.onnx); TensorRT, its execution provider and the reference evaluator get TensorRT's
    int8_rules: str = "onnxruntime"
    verify: bool = False  # `deploykit verify` checks it against the PyTorch reference (torch *is* the reference)
    serve: bool = False  # runtime.load and `deploykit serve` run it (an artifact file, with the feed checks)
    bench: bool = True  # `deploykit bench` times it
    triton_instance_kind: str | None = None  # KIND_CPU / KIND_GPU for `package`; None: Triton places the model
    auto_rank: int | None = None  # order of `auto` (runtime.load, serve), 1 first; None: never picked by auto

    def file(self, precision: str = "fp32") -> str:
        """The artifact file this backend runs at ``precision``: exactly what verify checks and bench times."""
        check_precision(precision)
        if self.kind == "torch":
            return WEIGHTS
        if self.kind == "trt":
            return engine_name(precision)
        return precision_model(precision, self.int8_rules)

    def make_hint(self, precision: str, name: str) -> str:
        """The command that makes this backend's file."""
        if self.kind == "trt":
            return f"deploykit build-trt {name} --{precision}"
        if precision == "fp32" or self.kind == "torch":
            return f"deploykit export {name}"
        target = {"onnxruntime": " --target ort", "tensorrt": " --target trt"}[self.int8_rules] if precision == "int8" else ""
        return f"deploykit calibrate {name}{target}"

    @property
    def preload(self) -> tuple[str, ...]:
        """Modules to import before a memory baseline, so it holds the library and not the model (bench)."""
        return {"torch": ("torch",), "ort": ("onnxruntime",), "ref": ("onnx",), "trt": ("tensorrt",)}[self.kind]

    def machine_problem(self) -> str | None:
        """Why this machine cannot run the backend at all, in one line; None when it might.

        Cheap: the TensorRT probe runs in a subprocess once per process; for onnxruntime's GPU
        providers only whether they are compiled in (the runner checks they really load)."""
        if self.kind == "trt":
            return probe().missing
        if self.providers and self.providers[0] != "CPUExecutionProvider":
            import onnxruntime as ort

            available = ort.get_available_providers()
            if self.providers[0] not in available:
                return (f"onnxruntime {ort.__version__} has no {self.providers[0]} (available: {', '.join(available)}; "
                        "install the `gpu` extra on a machine with CUDA)")
        return None

    def unavailable(self, artifact: Artifact, precision: str = "fp32", recipe=None) -> str | None:
        """Why this backend cannot run ``artifact`` at ``precision`` here, in one line; None when it can."""
        if self.kind == "torch" and recipe is not None and not recipe.runs_own_code:
            # PyTorch itself runs the module (the stored reference holds outputs, not the module): without its code
            # this backend cannot run here, as a GPU backend cannot without a GPU
            return f"PyTorch runs the module, whose code deploykit may not run: {artifact.reference(recipe).why_not}"
        filename = self.file(precision)  # the file first: cheaper, and the more useful reason
        if filename not in artifact.manifest["files"] or not artifact.path(filename).is_file():
            return f"{artifact.dir} has no {filename}; make it with `{self.make_hint(precision, artifact.name)}`"
        try:
            artifact.check_files(filename)
            if self.kind == "trt":  # cheap before the probe: an engine without its sidecar is never loaded
                read_sidecar(artifact.path(filename))
        except DeployKitError as exc:
            return str(exc)
        return self.machine_problem()

    def runner(self, path: str | Path | bytes, *, threads: int | None = None, spinning: bool = True,
               reference=None, recipe=None):
        """An inactive runner over ``path`` (enter it with ``with``); ``torch`` takes the module as ``reference``.

        ``spinning=False``: onnxruntime's idle threads sleep (a server's own threads need the cores)."""
        if self.kind == "torch":
            from .runners.torch_runner import TorchRunner  # function-level: torch; the table serves light commands

            return TorchRunner(reference, recipe, threads=threads)
        if self.kind == "ort":
            from .runners.ort_runner import OrtRunner  # function-level: onnxruntime, only for this backend

            return OrtRunner(path, providers=list(self.providers), threads=threads, spinning=spinning)
        if self.kind == "ref":
            from .runners.ref_runner import ReferenceRunner  # function-level: onnx's evaluator, only for ref

            return ReferenceRunner(path)
        from .trt.runner import TrtRunner  # function-level: TensorRT's runner, only on a TensorRT machine

        return TrtRunner(path)

    def open(self, artifact: Artifact, precision: str = "fp32", *, recipe=None, threads: int | None = None,
             spinning: bool = True):
        """An inactive runner over ``artifact``'s file for ``precision``; BackendUnavailable with the reason
        when this machine or the artifact cannot run it."""
        problem = self.unavailable(artifact, precision, recipe)
        if problem:
            raise BackendUnavailable(problem)
        reference = artifact.reference_model(recipe) if self.kind == "torch" else None
        return self.runner(artifact.path(self.file(precision)), threads=threads, spinning=spinning,
                           reference=reference, recipe=recipe)


_CPU = "CPUExecutionProvider"
_ORT, _PLAN = "onnxruntime_onnx", "tensorrt_plan"
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("torch", "torch", "PyTorch eager, CPU, torch.inference_mode (the reference)"),
    Backend("ort-cpu", "ort", "onnxruntime, CPU execution provider", (_CPU,), _ORT,
            verify=True, serve=True, triton_instance_kind="KIND_CPU", auto_rank=3),
    Backend("ort-cuda", "ort", "onnxruntime, CUDA execution provider", ("CUDAExecutionProvider", _CPU), _ORT,
            verify=True, serve=True, triton_instance_kind="KIND_GPU", auto_rank=2),
    Backend("ort-trt", "ort", "onnxruntime, TensorRT execution provider",
            ("TensorrtExecutionProvider", "CUDAExecutionProvider", _CPU), _ORT, "tensorrt",
            verify=True, serve=True, triton_instance_kind="KIND_GPU"),
    Backend("ref", "ref", "onnx ReferenceEvaluator (slow; small shapes)", int8_rules="tensorrt", verify=True),
    Backend("trt", "trt", "TensorRT engine from `deploykit build-trt`", (), _PLAN, "tensorrt",
            verify=True, serve=True, auto_rank=1),
)}
CAPABILITIES = ("verify", "serve", "bench", "package", "auto")
# what "auto" means where a command offers it: runtime.load / serve try the `auto` order; package ships the ONNX
# and lets Triton place it (the ort-cpu row's file, no instance group)
_AUTO_CHOICE = ("serve", "package")


def names(capability: str) -> tuple[str, ...]:
    """The backends with ``capability`` (a column of the table), in table order; ``"auto"`` in ``auto_rank`` order."""
    if capability == "auto":
        return tuple(sorted((b.name for b in BACKENDS.values() if b.auto_rank), key=lambda n: BACKENDS[n].auto_rank))
    if capability == "package":
        return tuple(b.name for b in BACKENDS.values() if b.triton_platform)
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; one of {', '.join(CAPABILITIES)}")
    return tuple(b.name for b in BACKENDS.values() if getattr(b, capability))


def choices(capability: str) -> tuple[str, ...]:
    """What a command's ``--backend`` accepts: ``names(capability)``, after ``"auto"`` where the command has one."""
    return (("auto",) if capability in _AUTO_CHOICE else ()) + names(capability)


# the order ``auto`` tries, best first
AUTO_ORDER = names("auto")


def get_backend(name: str, allowed=None, option: str = "--backend") -> Backend:
    """The row for ``name``, or a one-line error with the choices (and a close match)."""
    allowed = list(allowed or BACKENDS)
    if name not in allowed:
        close = difflib.get_close_matches(name, allowed, n=2, cutoff=0.5)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise DeployKitError(f"{option}: unknown backend {name!r}{hint}; choose from {', '.join(allowed)}")
    return BACKENDS[name]


@dataclass(frozen=True)
class Target:
    """A backend at a precision: what one bench row or one verify run measures."""

    backend: Backend
    precision: str = "fp32"

    @property
    def name(self) -> str:
        return self.backend.name if self.precision == "fp32" else f"{self.backend.name}/{self.precision}"

    @property
    def file(self) -> str:
        return self.backend.file(self.precision)


def parse_target(text: str, option: str = "--backends") -> Target:
    """``"ort-cpu/int8"`` -> Target(ort-cpu, int8); ``"torch"`` -> Target(torch, fp32)."""
    name, _, precision = text.strip().partition("/")
    backend = get_backend(name, names("bench"), option=option)
    precision = precision or "fp32"
    if precision not in PRECISIONS:
        raise DeployKitError(f"{option}: {text!r}: precision must be one of {', '.join(PRECISIONS)}")
    if backend.kind in ("torch", "ref") and precision != "fp32":
        raise DeployKitError(f"{option}: {text!r}: {backend.name} runs the FP32 reference only")
    return Target(backend, precision)


def parse_targets(text: str | None, default: tuple[str, ...], option: str = "--backends") -> list[Target]:
    """``"torch,ort-cpu,ort-cpu/int8"`` -> targets in the given order (``default`` when None); one-line errors."""
    given = list(default) if text is None else [n.strip() for n in text.split(",") if n.strip()]
    if not given:
        raise DeployKitError(f"{option} is empty; choose from {', '.join(names('bench'))} (optionally /fp16 or /int8)")
    targets: list[Target] = []
    for name in given:
        target = parse_target(name, option)
        if target in targets:
            raise DeployKitError(f"{option}: {target.name!r} is given twice")
        targets.append(target)
    return targets
