"""An artifact folder (``artifacts/<recipe>/``): model.onnx, weights.pt, manifest.json, and later
the INT8/FP16 models, engines and reports. Every consumer (verify, calibrate, build-trt, bench,
serve) opens artifacts through here, so the layout lives in one place.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DeployKitError
from .files import read_json, sha256_file
from .transaction import recover, transaction

MODEL = "model.onnx"
WEIGHTS = "weights.pt"
BUFFERS = "buffers.pt"  # non-persistent buffers, when the module has any (weights.pt stays a plain state_dict)
MANIFEST = "manifest.json"
RECIPE = "recipe.toml"  # the recipe the artifact was exported from, copied: the artifact is self-contained
LOG = "export.log"
MANIFEST_FORMAT = 1


def state_dict_bytes(model: torch.nn.Module) -> bytes:
    """weights.pt: the module's state_dict, as ``model.load_state_dict(torch.load(path))`` takes it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def buffers_bytes(model: torch.nn.Module) -> bytes | None:
    """buffers.pt: every tensor the state_dict leaves out (buffers registered with ``persistent=False``, e.g. a
    fixed random projection), so the artifact holds every tensor of the model; None when there is none."""
    from .export.weights import non_persistent_buffers

    extra = non_persistent_buffers(model)
    if not extra:
        return None
    buffer = io.BytesIO()
    torch.save(extra, buffer)
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
        """The artifact in ``folder``, after finishing or discarding a write a crash interrupted there."""
        folder = Path(folder)
        recover(folder)
        if not (folder / MANIFEST).is_file():
            raise DeployKitError(f"no artifact in {folder} (no {MANIFEST}); run `deploykit export {folder.name}` first")
        return cls(folder, check_manifest(folder / MANIFEST, read_json(folder / MANIFEST)))

    def known_files(self) -> dict[str, str]:
        """sha256 of every file deploykit wrote in this folder: this artifact's, and those of an earlier
        export of it that are still there (``superseded``), so re-runs replace their own files without --force."""
        return {**self.manifest.get("superseded", {}), **self.manifest["files"]}

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
        from .reference import REFERENCE, Reference, StoredReference

        record = self.manifest.get("reference")
        stored = None
        if isinstance(record, dict) and record.get("file") == REFERENCE:
            self.check_files(REFERENCE)
            stored = StoredReference(self.dir / REFERENCE, record, recipe)
        if model is not None:
            return Reference(stored, lambda: self.check_module(model))
        if recipe.runs_own_code:
            return Reference(stored, lambda: self.reference_model(recipe))
        why = ("hand it over: deploykit.verify(NAME, model=module)" if recipe.in_memory is not None else
               f"pass --module {recipe.factory} if it is your code, or --trust-code")
        return Reference(stored, None, why)

    def check_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` as export ran it, if its tensors are exactly this artifact's (a module trained further since
        is another model: one line naming the first tensor that differs)."""
        from .export.weights import as_exported

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
        from .export.weights import as_exported, load_buffers, load_checkpoint

        self.check_files(WEIGHTS)
        model = load_checkpoint(recipe.build(), self.dir / WEIGHTS, what="the artifact's weights")
        if BUFFERS in self.manifest.get("files", {}):
            self.check_files(BUFFERS)
            load_buffers(model, self.dir / BUFFERS)
        return as_exported(model)[0]  # as export ran it: a known family's export switches set


def _tensors(entries: list[dict]) -> tuple:
    import numpy as np

    from .recipe.shapes import parse_dim
    from .recipe.spec import TensorSpec

    tensors = []
    for entry in entries:
        try:
            dims = tuple(parse_dim(d) for d in entry["dims"])
            dtype = np.dtype(entry.get("dtype", "float32"))
        except (KeyError, ValueError, TypeError) as exc:
            raise DeployKitError(f"manifest entry {entry.get('name')!r} has unreadable dims or dtype: {exc}") from None
        tensors.append(TensorSpec(entry["name"], dims, dtype=dtype))
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


def write_artifact(folder: Path, files: dict[str, bytes], manifest: dict) -> dict:
    """Publish an export: its files, then its manifest (which records their sha256), as one transaction.

    Files an earlier export's manifest recorded (an INT8 model, reports) that are still there unchanged stay
    recognised as deploykit's, under ``superseded``: they belong to the old model, not to this artifact.
    """
    with transaction(folder) as txn:
        previous = {}
        if (folder / MANIFEST).is_file():
            with contextlib.suppress(DeployKitError):
                old = check_manifest(folder / MANIFEST, read_json(folder / MANIFEST))
                previous = {**old.get("superseded", {}), **old["files"]}
        manifest["files"] = {name: txn.write(name, data) for name, data in files.items()}
        superseded = {name: digest for name, digest in previous.items()
                      if name not in manifest["files"] and txn.sha256(name) == digest}
        if superseded:
            manifest["superseded"] = superseded
        txn.write_json(MANIFEST, manifest)
    return manifest


def update_manifest(artifact: Artifact, section: str, data, files: list[str] = ()) -> dict:
    """Record a later stage's results (e.g. "int8", "fp16", "trt") and the sha256 of the files it wrote.

    Inside a step's transaction on the artifact folder (``with transaction(artifact.dir)``) the manifest is
    published with the step's files and the hashes are those of the staged files; alone, it is a transaction
    of its own. The manifest is re-read under the folder's lock, so concurrent stages do not drop each
    other's sections.
    """
    with transaction(artifact.dir) as txn:
        staged = txn.staged(MANIFEST)
        manifest = check_manifest(artifact.dir / MANIFEST,
                                  json.loads(staged) if staged is not None else read_json(artifact.dir / MANIFEST))
        # a callable merges into the section as it is now, under the lock (concurrent package runs keep each other's)
        manifest[section] = data(manifest.get(section, {})) if callable(data) else data
        for name in files:
            digest = txn.sha256(name)
            if digest is None:
                raise DeployKitError(f"{artifact.dir / name} is missing (a deploykit bug: it records a file "
                                     "it did not write)")
            manifest["files"][name] = digest
            manifest.get("superseded", {}).pop(name, None)
        txn.write_json(MANIFEST, manifest)
    artifact.manifest = manifest
    return manifest


# What every consumer reads from a manifest; a manifest without them (or with the wrong types) is refused
# at open with what is wrong, rather than failing later with a KeyError.
_REQUIRED = {"format": int, "name": str, "recipe": dict, "files": dict, "inputs": list, "outputs": list, "dims": dict}


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(path: Path, manifest) -> dict:
    """``manifest`` if it is a deploykit manifest that the readers can use, else one line saying what is wrong."""
    from .files import safe_name

    problems = []
    if not isinstance(manifest, dict):
        raise DeployKitError(f"{path} is not a deploykit manifest (it holds a {type(manifest).__name__})")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DeployKitError(f"{path} is not a deploykit manifest (format {manifest.get('format')!r}, "
                             f"expected {MANIFEST_FORMAT})")
    for key, kind in _REQUIRED.items():
        if key not in manifest:
            problems.append(f"no {key!r}")
        elif not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            problems.append(f"{key!r} must be a {'JSON object' if kind is dict else kind.__name__}, "
                            f"got {type(manifest[key]).__name__}")
    for key in ("files", "superseded"):
        table = manifest.get(key)
        if isinstance(table, dict) and not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
            problems.append(f"{key!r} must map file names to sha256 strings")
        elif key == "superseded" and table is not None and not isinstance(table, dict):
            problems.append("'superseded' must be a JSON object")
    if isinstance(manifest.get("recipe"), dict) and not isinstance(manifest["recipe"].get("sha256"), str):
        problems.append("no recipe.sha256")
    for key in ("inputs", "outputs"):
        if isinstance(manifest.get(key), list) and not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("dims"), list)
                for e in manifest[key]):
            problems.append(f"every {key!r} entry needs a name and a dims list")
    for name, spec in (manifest["dims"].items() if isinstance(manifest.get("dims"), dict) else ()):
        if not isinstance(spec, dict) or not (_whole(spec.get("value")) or _whole(spec.get("min"))
                                              and _whole(spec.get("max"))):
            problems.append(f"dims.{name} needs an integer value, or integer min and max")
    if not problems:  # the types are right: now the values every reader relies on (a copied folder may hold anything)
        problems = _value_problems(manifest)
    if problems:
        raise DeployKitError(f"{path} is not a usable deploykit manifest: {'; '.join(problems)}; "
                             "re-export it with `deploykit export`")
    safe_name(manifest["name"], f"{path}: name")
    return manifest


# ONNX runtimes and TensorRT take int32 sizes: a larger bound is a typo or a hostile manifest (B.max = 10**30)
LARGEST_DIM = 2**31 - 1


def _value_problems(manifest: dict) -> list[str]:
    """What the recipe loader would refuse in a recipe, checked again in a manifest: dim bounds, steps, tensor dims."""
    from .recipe.shapes import DimExpr, parse_dim

    problems = []
    for name, spec in manifest["dims"].items():
        if "value" in spec:
            if not _whole(spec["value"]) or not 1 <= spec["value"] <= LARGEST_DIM:
                problems.append(f"dims.{name}.value must be in [1, {LARGEST_DIM}], got {spec['value']}")
            continue
        lo, opt, hi, step = spec["min"], spec.get("opt", spec["min"]), spec["max"], spec.get("multiple_of", 1)
        if not _whole(opt):
            problems.append(f"dims.{name}.opt must be an integer, got {opt!r}")
        elif not (1 <= lo <= opt <= hi <= LARGEST_DIM):
            problems.append(f"dims.{name} needs 1 <= min <= opt <= max <= {LARGEST_DIM}, got {lo}/{opt}/{hi}")
        if not _whole(step) or step < 1:  # 0 divides by zero on every request; "2" is not a number
            problems.append(f"dims.{name}.multiple_of must be a positive integer, got {step!r}")
    for key in ("inputs", "outputs"):
        if not manifest[key]:
            problems.append(f"{key!r} is empty")
        for entry in manifest[key]:
            for dim in entry["dims"]:
                try:
                    parsed = parse_dim(dim)
                except (ValueError, TypeError, ZeroDivisionError) as exc:
                    problems.append(f"{key} {entry['name']!r}: {exc}")
                    continue
                if isinstance(parsed, DimExpr) and parsed.symbol not in manifest["dims"]:
                    problems.append(f"{key} {entry['name']!r}: {dim!r} uses {parsed.symbol}, which dims does not declare")
                elif isinstance(parsed, int) and parsed > LARGEST_DIM:
                    problems.append(f"{key} {entry['name']!r}: size {parsed} is larger than {LARGEST_DIM}")
    return problems[:3]  # one line: the first few say enough


def check_ranks(artifact: "Artifact", actual: dict[str, int]) -> None:
    """One line when the model's tensors (name -> rank) disagree with the ranks the manifest declares."""
    declared = {t["name"]: len(t["dims"]) for t in (*artifact.manifest["inputs"], *artifact.manifest["outputs"])}
    wrong = [f"{name!r} has rank {actual[name]}, the manifest says {rank}" for name, rank in declared.items()
             if name in actual and actual[name] != rank]
    if wrong:
        raise DeployKitError(f"{artifact.dir}: the manifest disagrees with the model: {'; '.join(wrong[:3])}; "
                             "re-export it with `deploykit export`")
