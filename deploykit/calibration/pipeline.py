"""``calibrate_artifact``: one calibration -> the INT8 Q/DQ model, the TensorRT cache, the ranges
with provenance and the FP16 model, next to an exported model.onnx, recorded in its manifest.

Order: open + check the artifact -> open the data -> refuse to overwrite what deploykit did not
write -> measure (or, with ``reuse``, load matching) ranges -> Q/DQ model -> TensorRT cache ->
FP16 model -> a one-batch sanity run of both in onnxruntime -> atomic writes, manifest last.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from ..artifact import (CALIBRATION_CACHE, CALIBRATION_RANGES, FP16_MODEL, INT8_MODEL, MODEL, Artifact,
                        update_manifest)
from ..parity import ParityInput, compare_runners, record
from ..recipe.spec import Tolerance
from ..errors import DeployKitError
from ..files import atomic_write_bytes, atomic_write_text, check_can_overwrite, sha256_file
from . import fp16 as fp16_mod
from .data import open_data, samples_in
from .provenance import load_matching_ranges, make_provenance, ranges_document, write_ranges
from .qdq import QDQ_OPTIONS, attention_float_nodes, qdq_summary, quantize_qdq
from .ranges import compute_ranges, settings_for
from ..trt.calibration_cache import ALGORITHMS, DEFAULT_TRT_VERSION, format_cache, version_code

DEFAULT_METHOD = "minmax"
NO_TOLERANCE = Tolerance(None, None, None, None)  # the sanity run reports statistics; verify judges them


class NoProgress:
    """The progress interface the pipeline drives (the CLI passes a rich-backed one)."""

    def start(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


@dataclass
class CalibrationRun:
    name: str
    folder: Path
    method: str
    synthetic: bool
    reused: bool
    data: dict
    tensors: int
    trt_cache_header: str
    int8: dict
    fp16: dict | None
    files: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"name": self.name, "folder": str(self.folder), "method": self.method, "synthetic": self.synthetic,
                "reused_ranges": self.reused, "data": self.data, "tensors": self.tensors,
                "trt_cache_header": self.trt_cache_header, "int8": self.int8, "fp16": self.fp16,
                "files": self.files, "seconds": round(self.seconds, 2), "warnings": self.warnings}


def _check_io(original: onnx.ModelProto, derived: onnx.ModelProto, label: str) -> None:
    """verify swaps the model file under the same feed: names and element types must be model.onnx's."""
    def io(model):
        return [(v.name, v.type.tensor_type.elem_type) for v in (*model.graph.input, *model.graph.output)]

    initializers = {i.name for i in derived.graph.initializer}
    got = [x for x in io(derived) if x[0] not in initializers]
    if got != io(original):
        raise DeployKitError(f"the {label} model's inputs/outputs {got} differ from {MODEL}'s {io(original)}")


def _mark(model: onnx.ModelProto, info: dict) -> bytes:
    """Stamp provenance (and the synthetic flag) into the model's metadata_props."""
    entry = model.metadata_props.add()
    entry.key, entry.value = "deploykit.calibration", json.dumps(info, sort_keys=True)
    return model.SerializeToString()


def _sanity(model_bytes: bytes, first: ParityInput, reference: list) -> dict:
    """The derived model against model.onnx on one calibration batch: cosine and max abs per output."""
    from ..runners.ort_runner import OrtRunner

    with OrtRunner(model_bytes) as runner:
        case = compare_runners(reference, runner, [first], NO_TOLERANCE, floor=False).cases[0]
    if case.error:
        raise DeployKitError(f"the derived model does not run in onnxruntime: {case.error}")
    return {m.name: {"cosine": round(m.cosine, 6), "max_abs": m.max_abs} for m in case.outputs}


def calibrate_artifact(recipe, out_dir: str | Path = "artifacts", *, data: str | Path | None = None,
                       synthetic: int | None = None, method: str | None = None, per_channel: bool = False,
                       fp16: bool = True, force: bool = False, reuse: bool = False,
                       trt_version: str | None = None, batch_size: int | None = None, seed: int = 0,
                       synthetic_shapes: str = "sweep", headroom: float = fp16_mod.DEFAULT_HEADROOM, progress=None,
                       **method_settings) -> CalibrationRun:
    started = time.perf_counter()
    progress = progress or NoProgress()
    folder = Path(out_dir) / recipe.name
    artifact = Artifact.open(folder)
    artifact.check_recipe(recipe)
    artifact.check_files(MODEL)
    method = method or recipe.calibration.method or DEFAULT_METHOD
    settings = settings_for(method, **method_settings)
    trt_version = trt_version or _installed_tensorrt() or DEFAULT_TRT_VERSION
    version_code(trt_version)  # a bad or >= 11 version fails before any work

    source = open_data(recipe, data, synthetic, batch_size, seed, synthetic_shapes)
    written = [CALIBRATION_RANGES, CALIBRATION_CACHE, INT8_MODEL] + ([FP16_MODEL] if fp16 else [])
    known = artifact.manifest.get("files", {})
    for name in written:
        check_can_overwrite(folder / name, known.get(name), force)

    model_path = artifact.model_path
    description = source.describe()
    provenance = make_provenance(model_path, description, method, settings)
    warnings = [description["warning"]] if source.synthetic else []
    if not fp16 and (folder / FP16_MODEL).exists():
        warnings.append(f"--no-fp16: {FP16_MODEL} is from an earlier calibration and was left as it is")
    if reuse:
        if not (folder / CALIBRATION_RANGES).is_file():
            raise DeployKitError(f"--reuse: {folder / CALIBRATION_RANGES} does not exist; "
                                 "calibrate without --reuse first")
        ranges = load_matching_ranges(folder / CALIBRATION_RANGES, provenance)
    else:
        progress.start(f"{recipe.name}: {method} calibration over {source.samples} samples", source.samples)

        def on_batch(feed):
            progress.advance(samples_in(recipe, feed))

        searched = []

        def on_tensor(name):  # entropy only: a threshold search per tensor, the slow part
            if not searched:
                progress.start(f"{recipe.name}: entropy thresholds (per tensor)", None)
            searched.append(name)
            progress.advance()

        ranges = compute_ranges(model_path, source, method, on_batch=on_batch, on_tensor=on_tensor, **settings)

    progress.start(f"{recipe.name}: Q/DQ INT8 model", None)
    original = onnx.load(str(model_path))
    kept_float = attention_float_nodes(original)
    int8_model = quantize_qdq(model_path, ranges, per_channel=per_channel, exclude=[k["name"] for k in kept_float])
    _check_io(original, int8_model, "INT8")
    algorithm = ALGORITHMS[method]
    cache_text = format_cache({n: r.amax for n, r in ranges.tensors.items()}, trt_version, algorithm)
    header = cache_text.splitlines()[0]

    first = ParityInput("calibration", {}, next(iter(source)))
    from ..runners.ort_runner import OrtRunner

    with OrtRunner(str(model_path)) as runner:
        reference = record(runner, [first], "model.onnx", floor=False)
    stamp = {"method": method, "synthetic": source.synthetic, "data_sha256": description["sha256"],
             "model_sha256": provenance["model_sha256"]}
    int8_bytes = _mark(int8_model, stamp)
    int8_info = {"file": INT8_MODEL, "format": "QDQ", "activations": "int8 symmetric", "weights": "int8 symmetric",
                 "per_channel": per_channel, "zero_points": 0, "bias": "float (QuantizeBias=False)",
                 "method": method, "synthetic": source.synthetic, "structure": qdq_summary(int8_model),
                 "options": dict(QDQ_OPTIONS), "kept_float": kept_float,
                 "sanity_vs_onnx_fp32": _sanity(int8_bytes, first, reference)}

    fp16_info, fp16_bytes = None, None
    if fp16:
        progress.start(f"{recipe.name}: FP16 model", None)
        shapes = fp16_mod.tensor_shapes(original, first.feed)
        keep = fp16_mod.choose_fp32_nodes(original, ranges, shapes, headroom)
        fp16_model, kept = fp16_mod.convert_fp16(original, keep)
        _check_io(original, fp16_model, "FP16")
        fp16_bytes = _mark(fp16_model, stamp)
        import onnxconverter_common

        fp16_info = {"file": FP16_MODEL, "converter": f"onnxconverter-common {onnxconverter_common.__version__} "
                                                      "convert_float_to_float16(keep_io_types=True)",
                     "headroom": headroom, "budget": fp16_mod.FP16_MAX / headroom, "synthetic": source.synthetic,
                     "kept_fp32": [k.as_dict() for k in kept],
                     "ort_cpu": fp16_mod.ort_cpu_kernels(fp16_model),
                     "sanity_vs_onnx_fp32": _sanity(fp16_bytes, first, reference)}

    # writes: models, cache, then the ranges (which record the cache's hash), then the manifest
    atomic_write_bytes(folder / INT8_MODEL, int8_bytes)
    if fp16_bytes is not None:
        atomic_write_bytes(folder / FP16_MODEL, fp16_bytes)
    atomic_write_text(folder / CALIBRATION_CACHE, cache_text)
    cache_info = {"file": CALIBRATION_CACHE, "header": header, "algorithm": algorithm, "trt_version": trt_version,
                  "sha256": sha256_file(folder / CALIBRATION_CACHE)}
    write_ranges(folder / CALIBRATION_RANGES, ranges_document(provenance, ranges, cache_info))
    calibration_info = {"method": method, "settings": settings, "synthetic": source.synthetic,
                        "data": {k: v for k, v in description.items() if k != "shapes"},
                        "shapes": description["shapes"],
                        "tensors": len(ranges), "reused": reuse, "ranges_file": CALIBRATION_RANGES,
                        "trt_cache": cache_info}
    update_manifest(artifact, "calibration", calibration_info, [CALIBRATION_RANGES, CALIBRATION_CACHE])
    update_manifest(artifact, "int8", int8_info, [INT8_MODEL])
    if fp16_info is not None:
        update_manifest(artifact, "fp16", fp16_info, [FP16_MODEL])
    return CalibrationRun(recipe.name, folder, method, source.synthetic, reuse, description, len(ranges), header,
                          int8_info, fp16_info, written, time.perf_counter() - started, warnings)


def _installed_tensorrt() -> str | None:
    """The local TensorRT <= 10's version, if any (the cache header must name its reader's version).

    Never imported here: the lean runtime can segfault on a machine without a GPU, so the version
    comes from deploykit.trt.probe's subprocess, and only when the package is installed at all.
    """
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return None
    from ..trt.probe import probe

    version = probe().tensorrt_version or ""
    return version if version.split(".")[0].isdigit() and int(version.split(".")[0]) <= 10 else None
