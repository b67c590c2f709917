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
RECIPE = "recipe.toml"  # the recipe the artifact was exported from, copied: the artifact is self-contained
LOG = "export.log"
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

    # -- what the model takes and gives, as the manifest declares it --------------------------------
    @property
    def inputs(self) -> tuple:
        return _tensors(self.manifest["inputs"])

    @property
    def outputs(self) -> tuple:
        return _tensors(self.manifest["outputs"])

    @property
    def dims(self) -> dict:
        """Each symbol's DimSpec; with ``--static`` exports every symbol is fixed at the export shape."""
        from .recipe.spec import DimSpec

        fixed_at = self.manifest.get("export_shape") if self.manifest.get("static") else None
        dims = {}
        for name, spec in self.manifest["dims"].items():
            if "value" in spec:
                dims[name] = DimSpec(name, value=spec["value"], reason=spec.get("reason") or "a static dim")
            elif fixed_at and name in fixed_at:
                dims[name] = DimSpec(name, value=fixed_at[name], reason="the artifact was exported with --static")
            else:
                dims[name] = DimSpec(name, spec["min"], spec.get("opt", spec["min"]), spec["max"],
                                     spec.get("multiple_of", 1))
        return dims

    def fixed_symbols(self) -> dict[str, int]:
        return {n: d.value for n, d in self.dims.items() if d.is_static}

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


def _tensors(entries: list[dict]) -> tuple:
    import numpy as np

    from .recipe.shapes import parse_dim
    from .recipe.spec import TensorSpec

    tensors = []
    for entry in entries:
        try:
            dims = tuple(parse_dim(d) for d in entry["dims"])
        except (KeyError, ValueError) as exc:
            raise DeployKitError(f"manifest entry {entry.get('name')!r} has unreadable dims: {exc}") from None
        tensors.append(TensorSpec(entry["name"], dims, dtype=np.dtype(entry.get("dtype", "float32"))))
    return tuple(tensors)


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
