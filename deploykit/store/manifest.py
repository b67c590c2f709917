"""The manifest (``manifest.json``): what an artifact is, and the sha256 of every file deploykit wrote in it.

Its schema lives here: every reader opens a manifest through ``check_manifest``, which refuses in one line a
file that is not a usable deploykit manifest (an artifact folder is untrusted input: it may hold anything).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import DeployKitError
from ..tensors.shapes import DimExpr, parse_dim
from .files import read_json, safe_name
from .layout import MANIFEST

MANIFEST_FORMAT = 1


def read_manifest(folder: Path) -> dict:
    """The checked manifest in ``folder``."""
    return check_manifest(Path(folder) / MANIFEST, read_json(Path(folder) / MANIFEST))


def previous_manifest(folder: Path) -> dict | None:
    """The manifest in ``folder`` if it is a usable deploykit one, else None (none, or not deploykit's)."""
    if not (Path(folder) / MANIFEST).is_file():
        return None
    with contextlib.suppress(DeployKitError):
        return read_manifest(folder)
    return None


# What every consumer reads from a manifest; a manifest without them (or with the wrong types) is refused
# at open with what is wrong, rather than failing later with a KeyError.
_REQUIRED = {"format": int, "name": str, "recipe": dict, "files": dict, "inputs": list, "outputs": list, "dims": dict}


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(path: Path, manifest) -> dict:
    """``manifest`` if it is a deploykit manifest that the readers can use, else one line saying what is wrong."""
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


def check_ranks(artifact, actual: dict[str, int]) -> None:
    """One line when the model's tensors (name -> rank) disagree with the ranks ``artifact``'s manifest declares."""
    declared = {t["name"]: len(t["dims"]) for t in (*artifact.manifest["inputs"], *artifact.manifest["outputs"])}
    wrong = [f"{name!r} has rank {actual[name]}, the manifest says {rank}" for name, rank in declared.items()
             if name in actual and actual[name] != rank]
    if wrong:
        raise DeployKitError(f"{artifact.dir}: the manifest disagrees with the model: {'; '.join(wrong[:3])}; "
                             "re-export it with `deploykit export`")
