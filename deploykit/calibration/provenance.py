"""calibration.json: every tensor's range plus where it came from, so stale ranges are refused.

Provenance = the model the ranges were measured on (sha256), the data (kind, source, sha256 of the
files or of the synthetic recipe, samples, batch size, the shapes used), the method and its settings,
and the library versions. Reusing ranges -- or the TensorRT cache derived from them -- whose
provenance does not match the current request is an error that lists every difference.
"""

from __future__ import annotations

from pathlib import Path

from ..environment import versions
from ..errors import DeployKitError
from ..store.files import read_json, sha256_file
from ..store.layout import CALIBRATION_CACHE, CALIBRATION_RANGES, MODEL
from ..trt.calibration_cache import CalibrationCache, read_cache
from .ranges import Ranges

RANGES_FORMAT = 1
# What must be equal for two calibrations to be interchangeable (paths into the provenance dict).
COMPARED = ("model_sha256", "method", "settings", "data.kind", "data.sha256", "data.samples", "data.batch_size",
            "data.shapes", "versions.onnxruntime", "versions.deploykit")


class ProvenanceMismatch(DeployKitError):
    """Ranges or a cache made from another model, data, method or toolchain than the one asked for."""


def make_provenance(model_path: Path, data_description: dict, method: str, settings: dict) -> dict:
    return {"model": Path(model_path).name, "model_sha256": sha256_file(model_path), "method": method,
            "settings": dict(settings), "data": dict(data_description), "versions": versions("onnxruntime", "onnx", "numpy")}


def _get(tree: dict, dotted: str):
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _show(value) -> str:
    return f"{value[:12]}..." if isinstance(value, str) and len(value) == 64 else repr(value)  # hashes shortened


def mismatches(recorded: dict, expected: dict) -> list[str]:
    """Human-readable differences between two provenances (empty when they match)."""
    found = []
    for path in COMPARED:
        old, new = _get(recorded, path), _get(expected, path)
        if old != new:
            found.append(f"{path}: recorded {_show(old)}, now {_show(new)}")
    return found


def ranges_document(provenance: dict, ranges: Ranges, cache: dict | None = None) -> dict:
    synthetic = bool(provenance["data"].get("synthetic"))
    return {"format": RANGES_FORMAT, "synthetic": synthetic,
            **({"warning": provenance["data"].get("warning")} if synthetic else {}),
            "provenance": provenance, "trt_cache": cache, "tensors": ranges.as_dict()}


def read_ranges(path: Path) -> tuple[Ranges, dict]:
    document = read_json(Path(path))
    if document.get("format") != RANGES_FORMAT or "provenance" not in document or "tensors" not in document:
        raise DeployKitError(f"{path} is not a deploykit calibration ranges file (format {RANGES_FORMAT})")
    prov = document["provenance"]
    return Ranges.from_dict(prov["method"], prov.get("settings", {}), document["tensors"]), document


def load_matching_ranges(path: Path, expected: dict) -> Ranges:
    """The recorded ranges, only if their provenance matches ``expected``; otherwise refuse."""
    ranges, document = read_ranges(path)
    found = mismatches(document["provenance"], expected)
    if found:
        raise ProvenanceMismatch(f"{path}: refusing to reuse ranges with a different provenance: {'; '.join(found)}; "
                                 "re-run `deploykit calibrate` without --reuse to measure them again")
    return ranges


def trusted_cache(artifact_dir: Path, trt_version: str | None = None) -> tuple[Path, CalibrationCache]:
    """The TensorRT cache of an artifact, checked against calibration.json and the current model.onnx.

    For ``deploykit build-trt``: refuses a cache made for another model, edited after it was written,
    or written for another TensorRT version (which TensorRT itself would skip without a word).
    """
    artifact_dir = Path(artifact_dir)
    _, document = read_ranges(artifact_dir / CALIBRATION_RANGES)
    prov, cache_info = document["provenance"], document.get("trt_cache") or {}
    model_sha = sha256_file(artifact_dir / MODEL)
    if prov["model_sha256"] != model_sha:
        raise ProvenanceMismatch(f"{artifact_dir / CALIBRATION_RANGES}: measured on another {MODEL} "
                                 f"({prov['model_sha256'][:12]} != {model_sha[:12]}); re-run `deploykit calibrate`")
    path = artifact_dir / cache_info.get("file", CALIBRATION_CACHE)
    if not path.is_file():
        raise DeployKitError(f"{path} is missing; re-run `deploykit calibrate`")
    if sha256_file(path) != cache_info.get("sha256"):
        raise ProvenanceMismatch(f"{path} does not match the sha256 recorded in {CALIBRATION_RANGES} "
                                 "(edited or swapped)")
    return path, read_cache(path, trt_version=trt_version)
