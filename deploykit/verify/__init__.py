"""``deploykit verify``: prove an artifact against PyTorch over its whole declared shape range."""

from __future__ import annotations

from pathlib import Path

from ..artifact import Artifact, PRECISION_MODELS, engine_name, precision_model
from ..errors import DeployKitError
from ..weights import load_checkpoint
from .harness import BACKENDS, VerifyRun, run_parity
from .report import write_results

__all__ = ["BACKENDS", "VerifyRun", "verify_artifact", "verify_onnx"]

# which runtime's model file each ONNX backend verifies: onnxruntime's kernels (CPU, CUDA) get the INT8 model
# made for them; the TensorRT execution provider and the reference evaluator (ONNX semantics on CPU) TensorRT's
MODEL_RUNTIME = {"ort": "onnxruntime", "ort-cuda": "onnxruntime", "ort-trt": "tensorrt", "ref": "tensorrt"}


def verify_artifact(recipe, out_dir: str | Path = "artifacts", *, backend: str = "ort", precision: str = "fp32",
                    extra_shapes=(), seed: int = 0, write: bool = True, on_case=None) -> VerifyRun:
    """Verify ``out_dir/<recipe>/`` (made by ``deploykit export``) and write verify.json + report.md there."""
    artifact = Artifact.open(Path(out_dir) / recipe.name)
    artifact.check_recipe(recipe)
    if backend == "trt":
        model_file = engine_name(precision)
    else:
        if precision not in PRECISION_MODELS:
            raise DeployKitError(f"--precision must be one of {', '.join(PRECISION_MODELS)}, got {precision!r}")
        # exactly the file that runtime runs and bench times on that runtime (one INT8 file per runtime)
        model_file = precision_model(precision, MODEL_RUNTIME[backend])
    if model_file not in artifact.manifest["files"]:
        target = " --target " + ("ort" if MODEL_RUNTIME.get(backend) == "onnxruntime" else "trt")
        hint = ("deploykit build-trt" if backend == "trt" else f"deploykit calibrate{target * (precision == 'int8')}"
                if precision != "fp32" else "deploykit export")
        raise DeployKitError(f"{artifact.dir} has no {model_file}; make it with `{hint} {recipe.name}`")
    artifact.check_files(model_file)
    manifest = artifact.manifest
    run = run_parity(
        recipe, artifact.path(model_file), artifact.reference_model(recipe), backend=backend, precision=precision,
        extra_shapes=extra_shapes, seed=seed, static_shape=manifest["export_shape"] if manifest.get("static") else None,
        export_shape=manifest.get("export_shape"), on_case=on_case,
    )
    if write:
        write_results(artifact.dir, run)
    return run


def verify_onnx(onnx_path: str | Path, recipe, checkpoint: str | Path | None, *, backend: str = "ort",
                precision: str = "fp32", extra_shapes=(), seed: int = 0, write: bool = True, on_case=None) -> VerifyRun:
    """Verify a user's own ONNX against its module (built from the recipe's factory + checkpoint)."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise DeployKitError(f"{onnx_path} does not exist")
    if checkpoint is None:
        raise DeployKitError("--checkpoint is required with --onnx: the module needs the weights the ONNX was made from")
    reference = load_checkpoint(recipe.build(), checkpoint)
    run = run_parity(recipe, onnx_path, reference, backend=backend, precision=precision, extra_shapes=extra_shapes,
                     seed=seed, on_case=on_case)
    if write:
        folder = onnx_path.parent / f"{onnx_path.stem}.verify"
        folder.mkdir(exist_ok=True)
        write_results(folder, run)
    return run

