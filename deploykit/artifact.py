"""An artifact folder (``artifacts/<recipe>/``): model.onnx, weights.pt, manifest.json, and later
the INT8/FP16 models, engines and reports. Every consumer (verify, calibrate, build-trt, bench,
serve) opens artifacts through here, so the layout lives in one place.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DeployKitError
from .files import read_json, sha256_file

MODEL = "model.onnx"
WEIGHTS = "weights.pt"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def state_dict_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


@dataclass
class Artifact:
    dir: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def model_path(self) -> Path:
        return self.dir / MODEL

    def path(self, filename: str) -> Path:
        return self.dir / filename

    @classmethod
    def open(cls, folder: str | Path) -> "Artifact":
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise DeployKitError(f"no artifact in {folder} (no {MANIFEST}); run `deploykit export {folder.name}` first")
        manifest = read_json(folder / MANIFEST)
        if manifest.get("format") != MANIFEST_FORMAT or "files" not in manifest:
            raise DeployKitError(f"{folder / MANIFEST} is not a deploykit manifest (format {MANIFEST_FORMAT})")
        return cls(folder, manifest)

    def check_files(self, *names: str) -> None:
        """The files must exist and be the ones the manifest recorded (not edited or swapped)."""
        for name in names or tuple(self.manifest["files"]):
            path = self.dir / name
            recorded = self.manifest["files"].get(name)
            if recorded is None:
                raise DeployKitError(f"{self.dir}: {name} is not recorded in the manifest")
            if not path.is_file():
                raise DeployKitError(f"{self.dir}: {name} is missing; re-export with `deploykit export {self.name}`")
            if sha256_file(path) != recorded:
                raise DeployKitError(f"{path} does not match the sha256 in its manifest (modified after export)")

    def check_recipe(self, recipe) -> None:
        recorded = self.manifest["recipe"]["sha256"]
        if recorded != recipe.sha256:
            raise DeployKitError(
                f"{self.dir} was exported from a different recipe than {recipe.path} "
                f"(sha256 {recorded[:12]} != {recipe.sha256[:12]}); re-export with `deploykit export {recipe.name}`"
            )

    def reference_model(self, recipe) -> torch.nn.Module:
        """The PyTorch module with exactly the weights the ONNX was exported from."""
        self.check_files(WEIGHTS)
        model = recipe.build()
        state = torch.load(str(self.dir / WEIGHTS), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        return model.eval()


# Files later stages add next to model.onnx (one name each, so every command agrees).
FP16_MODEL = "model.fp16.onnx"
INT8_MODEL = "model.int8.onnx"  # Q/DQ in TensorRT's rules (deploykit calibrate --target trt)
INT8_ORT_MODEL = "model.int8.ort.onnx"  # Q/DQ chosen and shaped for onnxruntime CPU (--target ort)
CALIBRATION_CACHE = "calibration.cache"
CALIBRATION_RANGES = "calibration.json"
PRECISION_MODELS = {"fp32": MODEL, "fp16": FP16_MODEL, "int8": INT8_MODEL}
RUNTIMES = ("onnxruntime", "tensorrt")


def precision_model(precision: str, runtime: str = "onnxruntime") -> str:
    """The ONNX file a runtime runs at a precision: INT8 has one file per runtime (they differ on
    purpose: calibration/qdq.py vs calibration/ort_int8.py); FP32 and FP16 share theirs."""
    if precision not in PRECISION_MODELS:
        raise DeployKitError(f"precision must be one of {', '.join(PRECISION_MODELS)}, got {precision!r}")
    if precision == "int8" and runtime == "onnxruntime":
        return INT8_ORT_MODEL
    return PRECISION_MODELS[precision]


def engine_name(precision: str) -> str:
    return f"model.{precision}.plan"


def update_manifest(artifact: Artifact, section: str, data: dict, files: list[str] = ()) -> dict:
    """Record a later stage's results (e.g. "int8", "fp16", "trt") and the sha256 of the files it wrote.

    Re-reads the manifest first so concurrent stages do not drop each other's sections.
    """
    from .files import atomic_write_json

    manifest = read_json(artifact.dir / MANIFEST)
    manifest[section] = data
    for name in files:
        manifest["files"][name] = sha256_file(artifact.dir / name)
    atomic_write_json(artifact.dir / MANIFEST, manifest)
    artifact.manifest = manifest
    return manifest
