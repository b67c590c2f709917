"""An artifact folder (``artifacts/<recipe>/``) as its readers see it: what the model takes and gives, its files
checked against the manifest, and where PyTorch's side of a check comes from. Every consumer (verify, calibrate,
build-trt, bench, serve) opens artifacts through here; the layout, the manifest's schema and the writer are the
store's (deploykit/store/).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_buffers, load_checkpoint
from .errors import DeployKitError
from .families import as_exported
from .reference import Reference, StoredReference
from .store.files import sha256_file
from .store.layout import BUFFERS, MANIFEST, MODEL, REFERENCE, WEIGHTS
from .store.manifest import read_manifest
from .store.ownership import Ownership
from .store.transaction import recover
from .tensors.shapes import parse_dim
from .tensors.spec import DimSpec, TensorSpec


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
        """The artifact in ``folder``, after finishing or discarding a write a crash interrupted there."""
        folder = Path(folder)
        recover(folder)
        if not (folder / MANIFEST).is_file():
            raise DeployKitError(f"no artifact in {folder} (no {MANIFEST}); run `deploykit export {folder.name}` first")
        return cls(folder, read_manifest(folder))

    def check_writable(self, names, force: bool = False) -> None:
        """Refuse before any work, in one line, to replace a file here that deploykit did not write (or that
        changed since); the step's writer checks again under the folder's lock."""
        Ownership.of(self.manifest).check(self.dir, names, force)

    def check_files(self, *names: str) -> None:
        """The files must exist and be the ones the manifest recorded (not edited or swapped)."""
        for name in names or tuple(self.manifest["files"]):
            path = self.dir / name
            recorded = self.manifest["files"].get(name)
            if recorded is None:
                raise DeployKitError(f"{self.dir}: {name} is not recorded in the manifest")
            if not path.is_file():
                raise DeployKitError(f"{self.dir}: {name} is missing; re-export with `deploykit export {self.name}`")
            try:
                actual = sha256_file(path)
            except OSError as exc:  # unreadable (permissions, a folder in its place): one line naming the file
                raise DeployKitError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
            if actual != recorded:
                raise DeployKitError(f"{path} does not match the sha256 in its manifest (modified after export)")

    def check_recipe(self, recipe) -> None:
        recorded = self.manifest["recipe"]["sha256"]
        if recorded != recipe.sha256:
            raise DeployKitError(
                f"{self.dir} was exported from a different recipe than {recipe.path} "
                f"(sha256 {recorded[:12]} != {recipe.sha256[:12]}); re-export with `deploykit export {recipe.name}`"
            )

    def reference(self, recipe, model: torch.nn.Module | None = None):
        """Where PyTorch's outputs come from for checks of this artifact (deploykit.reference.Reference): the
        outputs export stored, and the module where they are not enough: ``model`` (handed over in Python; its
        weights must be this artifact's), else the recipe's module if deploykit may run its code."""
        record = self.manifest.get("reference")
        stored = None
        if isinstance(record, dict) and record.get("file") == REFERENCE:
            self.check_files(REFERENCE)
            stored = StoredReference(self.dir / REFERENCE, record, recipe)
        if model is not None:
            return Reference(stored, lambda: self.check_module(model))
        if recipe.runs_own_code:
            return Reference(stored, lambda: self.reference_model(recipe))
        why = ("it was exported from a module in memory: hand that module over in Python (deploykit.verify(NAME, "
               "model=module))" if recipe.in_memory is not None else
               f"pass --module {recipe.factory} if it is your code, or --trust-code")
        return Reference(stored, None, why)

    def check_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` as export ran it, if its tensors are exactly this artifact's (a module trained further since
        is another model: one line naming the first tensor that differs)."""
        self.check_files(WEIGHTS)
        stored = torch.load(self.dir / WEIGHTS, map_location="cpu", weights_only=True)
        state = model.state_dict()
        differs = next((k for k in stored if k not in state or not torch.equal(state[k].cpu(), stored[k])),
                       next((k for k in state if k not in stored), None))
        if differs is not None:
            raise DeployKitError(f"the module handed over is not the one exported to {self.dir}: its {differs!r} "
                                 "differs from weights.pt (trained further since?); export it again")
        return as_exported(model)[0]

    def reference_model(self, recipe) -> torch.nn.Module:
        """The PyTorch module with exactly the weights the ONNX was exported from."""
        self.check_files(WEIGHTS)
        model = load_checkpoint(recipe.build(), self.dir / WEIGHTS, what="the artifact's weights")
        if BUFFERS in self.manifest.get("files", {}):
            self.check_files(BUFFERS)
            load_buffers(model, self.dir / BUFFERS)
        return as_exported(model)[0]  # as export ran it: a known family's export switches set


def _tensors(entries: list[dict]) -> tuple:
    tensors = []
    for entry in entries:
        try:
            dims = tuple(parse_dim(d) for d in entry["dims"])
            dtype = np.dtype(entry.get("dtype", "float32"))
        except (KeyError, ValueError, TypeError) as exc:
            raise DeployKitError(f"manifest entry {entry.get('name')!r} has unreadable dims or dtype: {exc}") from None
        tensors.append(TensorSpec(entry["name"], dims, dtype=dtype))
    return tuple(tensors)
