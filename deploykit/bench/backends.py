"""The backends ``deploykit bench`` can time, and why one is unavailable here.

A backend is a runner over one file of the artifact folder: ``torch`` the PyTorch module with the
exported weights (weights.pt), ``ort*`` onnxruntime CPU over model.onnx / model.int8.ort.onnx (Q/DQ) /
model.fp16.onnx, ``trt*`` a TensorRT engine (deploykit/trt/runner.py, imported only when used).
An unavailable backend (no GPU, no TensorRT, file not made yet) is reported as skipped with the
reason by ``unavailable``; it is never dropped from the results.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..artifact import FP16_MODEL, INT8_ORT_MODEL, MODEL, WEIGHTS, Artifact, engine_name
from ..errors import DeployKitError


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str  # "torch" | "ort" | "trt"
    file: str  # the artifact file it runs
    precision: str
    make_hint: str  # the command that makes ``file``
    description: str

    @property
    def preload(self) -> tuple[str, ...]:
        """Modules imported before the memory baseline, so the baseline holds the library, not the model."""
        return {"torch": ("torch",), "ort": ("onnxruntime",), "trt": ("tensorrt",)}[self.kind]

    def unavailable(self, artifact: Artifact) -> str | None:
        """Why this backend cannot run on ``artifact`` here, in one line; None when it can."""
        if self.kind == "trt":
            from ..trt.probe import probe

            missing = probe().missing
            if missing:
                return missing
        if not artifact.path(self.file).is_file():
            return f"no {self.file} in {artifact.dir}; make it with `{self.make_hint.format(name=artifact.name)}`"
        try:
            artifact.check_files(self.file)
        except DeployKitError as exc:
            return str(exc)
        return None

    def runner(self, artifact: Artifact, recipe, threads: int | None):
        """An inactive runner (enter it with ``with``)."""
        if self.kind == "torch":
            from ..runners.torch_runner import TorchRunner

            return TorchRunner(artifact.reference_model(recipe), recipe, threads=threads)
        if self.kind == "ort":
            from ..runners.ort_runner import OrtRunner

            return OrtRunner(artifact.path(self.file), threads=threads)  # the file as written: what verify checks
        from ..trt.runner import TrtRunner

        return TrtRunner(artifact.path(self.file))


def _backends() -> dict[str, Backend]:
    calibrate = "deploykit calibrate {name}"
    items = [
        Backend("torch", "torch", WEIGHTS, "fp32", "deploykit export {name}",
                "PyTorch eager, CPU, torch.inference_mode"),
        Backend("ort", "ort", MODEL, "fp32", "deploykit export {name}", "onnxruntime CPU, FP32 model.onnx"),
        Backend("ort-int8", "ort", INT8_ORT_MODEL, "int8", calibrate + " --target ort",
                "onnxruntime CPU, Q/DQ INT8 model.int8.ort.onnx (made for onnxruntime by deploykit calibrate)"),
        Backend("ort-fp16", "ort", FP16_MODEL, "fp16", calibrate, "onnxruntime CPU, FP16 model.fp16.onnx"),
    ]
    for precision in ("fp32", "fp16", "int8"):
        name = "trt" if precision == "fp32" else f"trt-{precision}"
        items.append(Backend(name, "trt", engine_name(precision), precision,
                             f"deploykit build-trt {{name}} --{precision}", f"TensorRT {precision.upper()} engine"))
    return {b.name: b for b in items}


BACKENDS = _backends()
DEFAULT_BACKENDS = ("torch", "ort", "ort-int8", "ort-fp16", "trt")


def parse_backends(text: str | None) -> list[Backend]:
    """``"torch,ort"`` -> backends, in the given order; unknown or repeated names are one-line errors."""
    if text is None:
        return [BACKENDS[n] for n in DEFAULT_BACKENDS]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DeployKitError(f"--backends is empty; choose from {', '.join(BACKENDS)}")
    chosen = []
    for name in names:
        if name not in BACKENDS:
            close = difflib.get_close_matches(name, list(BACKENDS), n=2, cutoff=0.5)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise DeployKitError(f"--backends: unknown backend {name!r}{hint}; choose from {', '.join(BACKENDS)}")
        if BACKENDS[name] in chosen:
            raise DeployKitError(f"--backends: {name!r} is given twice")
        chosen.append(BACKENDS[name])
    return chosen
