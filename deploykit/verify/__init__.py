"""``deploykit verify``: prove an artifact against PyTorch over its whole declared shape range."""

from __future__ import annotations

from pathlib import Path

import torch

from ..artifact import Artifact
from ..backends import BACKENDS as BACKEND_TABLE
from ..callable_module import make_callable
from ..checkpoint import load_checkpoint
from ..errors import DeployKitError
from ..families import as_exported
from ..reference import Reference
from ..store.layout import BUFFERS, WEIGHTS
from .harness import BACKENDS, VerifyRun, run_parity
from .options import VerifyOptions
from .report import check_writable, write_results

__all__ = ["BACKENDS", "VerifyOptions", "VerifyRun", "verify_artifact", "verify_onnx"]


def verify_artifact(recipe, out_dir: str | Path = "artifacts", options: VerifyOptions | None = None, *, model=None,
                    on_case=None) -> VerifyRun:
    """Verify ``out_dir/<recipe>/`` (made by ``deploykit export``) as ``options`` say (VerifyOptions(): ort-cpu,
    fp32, the sweep) and write verify.json + report.md there (unless ``options.write`` is False).

    PyTorch's side is the artifact's stored reference where it holds the sweep, else the module: ``model`` (its
    weights must be the artifact's), or the recipe's if deploykit may run its code. ``on_case(case)`` before each
    shape."""
    options = options or VerifyOptions()
    options.check()
    backend, precision, write, force = options.backend, options.precision, options.write, options.force
    artifact = Artifact.open(Path(out_dir) / recipe.name)
    artifact.check_recipe(recipe)
    table = BACKEND_TABLE[backend]
    model_file = table.file(precision)
    if model_file not in artifact.manifest["files"]:
        raise DeployKitError(f"{artifact.dir} has no {model_file}; make it with `{table.make_hint(precision, recipe.name)}`")
    # the file checked, and every tensor of the model beside it (weights.pt is the artifact's even when the stored
    # reference makes loading it unnecessary): none edited or swapped since export
    artifact.check_files(model_file, *(f for f in (WEIGHTS, BUFFERS) if f in artifact.manifest["files"]))
    if write:  # before the run: a user's own report.md or plot is never overwritten (without --force)
        check_writable(artifact.dir, backend, precision, [t.name for t in recipe.outputs], force)
    manifest = artifact.manifest
    run = run_parity(
        recipe, artifact.path(model_file), artifact.reference(recipe, model), backend=backend, precision=precision,
        extra_shapes=list(options.extra_shapes), seed=options.seed, samples=options.samples,
        static_shape=manifest["export_shape"] if manifest.get("static") else None,
        export_shape=manifest.get("export_shape"), on_case=on_case, range_sampled=range_status(manifest) == "sampled",
    )
    run.model_sha256 = manifest["files"][model_file]  # check_files above: the file run_parity read has it
    if write:
        write_results(artifact.dir, run, force=force)
    return run


def range_status(manifest: dict) -> str:
    """What export's range analysis concluded (guards.py): proved, partitioned, sampled or static."""
    recorded = manifest.get("checks", {}).get("specialisation", {})
    analysed = recorded.get("range") if isinstance(recorded, dict) else None
    return analysed.get("status", "unknown") if isinstance(analysed, dict) else "unknown"


def verify_onnx(onnx_path: str | Path, recipe, options: VerifyOptions | None = None, *,
                checkpoint: str | Path | None = None, on_case=None) -> VerifyRun:
    """Verify a user's own ONNX against its module: the recipe's factory, with ``checkpoint`` loaded when given;
    the results go to ``<onnx stem>.verify/`` beside it (unless ``options.write`` is False).

    Without a checkpoint the factory's module is the reference as it is: fine when the factory loads the
    trained weights itself, or the module has none; a factory that initialises randomly on every call
    cannot be the reference of anything, and is refused."""
    options = options or VerifyOptions()
    options.check()
    backend, precision, write, force = options.backend, options.precision, options.write, options.force
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise DeployKitError(f"{onnx_path} does not exist")
    results = onnx_path.parent / f"{onnx_path.stem}.verify"
    if write:
        check_writable(results, backend, precision, [t.name for t in recipe.outputs], force)
    if checkpoint is not None:
        reference = load_checkpoint(recipe.build(), checkpoint)
    else:
        reference = recipe.build()
        state = reference.state_dict()
        again = recipe.build().state_dict()
        if any(not torch.equal(state[k], again[k]) for k in state):
            raise DeployKitError(f"{recipe.factory or recipe.module} returns different weights on every call "
                                 "(random initialisation): pass --checkpoint with the weights the ONNX was exported from")
    run = run_parity(recipe, onnx_path, Reference(None, lambda: as_exported(reference)[0]), backend=backend,
                     precision=precision, extra_shapes=list(options.extra_shapes), seed=options.seed,
                     samples=options.samples, on_case=on_case)
    if write:
        write_results(results, run, force=force)
    return run


make_callable(__name__, "verify")  # deploykit.verify(...) is the Python API (callable_module.py)
