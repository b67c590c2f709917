"""``calibrate_artifact``: one calibration -> the INT8 models (one per target), the TensorRT cache,
the ranges with provenance and the FP16 model, next to an exported model.onnx, recorded in its manifest.

Targets (``target``): ``trt`` writes model.int8.onnx in TensorRT's Q/DQ rules (qdq.py: symmetric,
zero-points 0, float biases) plus the cache; ``ort`` writes model.int8.ort.onnx, whose quantized
nodes are chosen per model by measurement (ort_search.py) in onnxruntime's own form (ort_int8.py);
``all`` (the default) writes both. The manifest's ``precision_files`` says which file is for which runtime.

Order: open + check the artifact -> open the data -> refuse to overwrite what deploykit did not
write -> measure (or, with ``reuse``, load matching) ranges -> INT8 model(s) -> TensorRT cache ->
FP16 model -> what each file is worth (accuracy over the sweep against PyTorch, speed against FP32
at the opt shape in one interleaved run; worth.py) -> one step (store/writer.py), manifest last.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from ..artifact import Artifact
from ..bench.interleave import interleaved
from ..errors import DeployKitError
from ..onnx_graph import load_model
from ..runners.ort_runner import ort_session
from ..store.layout import (CALIBRATION_CACHE, CALIBRATION_RANGES, FP16_MODEL, INT8_MODEL, INT8_ORT_MODEL, MODEL,
                            precision_files)
from ..store.writer import artifact_step
from ..trt.calibration_cache import ALGORITHMS, DEFAULT_TRT_VERSION, format_cache, version_code
from ..trt.probe import probe
from . import fp16 as fp16_mod
from . import worth
from .data import open_data, samples_in
from .options import DEFAULT_METHOD, CalibrateOptions
from .ort_int8 import ORT_OPTIONS, WEIGHT_BOUND
from .ort_search import search_ort_int8
from .provenance import load_matching_ranges, make_provenance, ranges_document
from .qdq import QDQ_OPTIONS, attention_float_nodes, qdq_summary, quantize_qdq
from .ranges import compute_ranges, settings_for

SEARCH_BATCHES = 4  # calibration batches the INT8 search checks each candidate on (distinct shapes first)


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
    int8: dict | None
    fp16: dict | None
    target: str = "all"
    int8_ort: dict | None = None
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"name": self.name, "folder": str(self.folder), "method": self.method, "synthetic": self.synthetic,
                "reused_ranges": self.reused, "data": self.data, "tensors": self.tensors, "target": self.target,
                "trt_cache_header": self.trt_cache_header, "int8": self.int8, "int8_ort": self.int8_ort,
                "fp16": self.fp16, "files": self.files, "seconds": round(self.seconds, 2), "warnings": self.warnings}


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


def calibrate_artifact(recipe, out_dir: str | Path = "artifacts", options: CalibrateOptions | None = None, *,
                       progress=None) -> CalibrationRun:
    """Calibrate ``out_dir/<recipe.name>/`` as ``options`` say (CalibrateOptions(): the defaults); see the module doc."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    options = options or CalibrateOptions()
    options.check()
    data, synthetic, method, per_channel, fp16, force, reuse, target, threads, seed = (
        options.data, options.synthetic, options.method, options.per_channel, options.fp16, options.force,
        options.reuse, options.target, options.threads, options.seed)
    folder = Path(out_dir) / recipe.name
    artifact = Artifact.open(folder)
    artifact.check_recipe(recipe)
    artifact.check_files(MODEL)
    method = method or recipe.calibration.method or DEFAULT_METHOD
    settings = settings_for(method, **options.method_settings)
    trt_version = options.trt_version or _installed_tensorrt() or DEFAULT_TRT_VERSION
    version_code(trt_version)  # a bad or >= 11 version fails before any work

    source = open_data(recipe, data, synthetic, options.batch_size, seed, options.synthetic_shapes)
    for_trt, for_ort = target in ("all", "trt"), target in ("all", "ort")
    written = [CALIBRATION_RANGES, CALIBRATION_CACHE] + [INT8_MODEL] * for_trt + [INT8_ORT_MODEL] * for_ort \
        + ([FP16_MODEL] if fp16 else [])
    artifact.check_writable(written, force)

    model_path = artifact.model_path
    original = load_model(model_path)  # a truncated model (its hash updated to match) is one line, before any work
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

    kept_float = attention_float_nodes(original)
    stamp = {"method": method, "synthetic": source.synthetic, "data_sha256": description["sha256"],
             "model_sha256": provenance["model_sha256"]}
    reference = artifact.reference(recipe)  # the stored outputs; the module only where they do not reach
    models: dict[str, bytes] = {}  # file -> bytes, in the order they are reported
    int8_info = ort_info = fp16_info = None

    if for_trt:
        progress.start(f"{recipe.name}: Q/DQ INT8 model for TensorRT", None)
        int8_model = quantize_qdq(model_path, ranges, per_channel=per_channel, exclude=[k["name"] for k in kept_float])
        _check_io(original, int8_model, "INT8")
        models[INT8_MODEL] = _mark(int8_model, {**stamp, "target": "tensorrt"})
        int8_info = {"file": INT8_MODEL, "target": "tensorrt", "format": "QDQ", "activations": "int8 symmetric",
                     "weights": "int8 symmetric", "per_channel": per_channel, "zero_points": 0,
                     "bias": "float (QuantizeBias=False)", "method": method, "synthetic": source.synthetic,
                     "structure": qdq_summary(int8_model), "options": dict(QDQ_OPTIONS), "kept_float": kept_float}
    algorithm = ALGORITHMS[method]
    cache_text = format_cache({n: r.amax for n, r in ranges.tensors.items()}, trt_version, algorithm)
    header = cache_text.splitlines()[0]

    if for_ort:
        feeds = _search_feeds(recipe, source)
        # the calibration batches are the user's data: PyTorch's outputs for them are not stored; without the
        # module's code the FP32 ONNX (checked against PyTorch at export) stands in for it, and the record says so
        expected, search_reference = worth.reference_outputs(reference, recipe, feeds, fallback_onnx=model_path)
        choice = search_ort_int8(model_path, ranges, recipe, feeds, expected,
                                 kept_float={k["name"] for k in kept_float}, threads=threads, progress=progress)
        _check_io(original, choice.model, "onnxruntime INT8")
        models[INT8_ORT_MODEL] = _mark(choice.model, {**stamp, "target": "onnxruntime"})
        ort_info = {"file": INT8_ORT_MODEL, "target": "onnxruntime", "format": "QDQ",
                    "activations": "uint8 asymmetric", "weights": f"int8 symmetric per channel, |w| <= {WEIGHT_BOUND} "
                    "(7-bit: no int16 saturation in onnxruntime's U8S8 kernels on any x86 CPU)",
                    "bias": "int32", "method": method, "synthetic": source.synthetic,
                    "structure": qdq_summary(choice.model), "options": {**ORT_OPTIONS, "reduce_range": True},
                    "kept_float": kept_float, "policy": {**choice.record(), "search_reference": search_reference}}
        if choice.note:
            warnings.append(f"{INT8_ORT_MODEL}: {choice.note}")

    if fp16:
        progress.start(f"{recipe.name}: FP16 model", None)
        shapes = fp16_mod.tensor_shapes(original, next(iter(source)))
        keep = fp16_mod.choose_fp32_nodes(original, ranges, shapes, options.headroom)
        fp16_model, kept = fp16_mod.convert_fp16(original, keep)
        _check_io(original, fp16_model, "FP16")
        models[FP16_MODEL] = _mark(fp16_model, stamp)
        import onnxconverter_common

        fp16_info = {"file": FP16_MODEL, "target": "onnxruntime, tensorrt",
                     "converter": f"onnxconverter-common {onnxconverter_common.__version__} "
                                  "convert_float_to_float16(keep_io_types=True)",
                     "headroom": options.headroom, "budget": fp16_mod.FP16_MAX / options.headroom,
                     "synthetic": source.synthetic,
                     "kept_fp32": [k.as_dict() for k in kept], "ort_cpu": fp16_mod.ort_cpu_kernels(fp16_model)}

    progress.start(f"{recipe.name}: accuracy over the sweep and speed against FP32", None)
    worths = _worth(recipe, reference, model_path, models, threads, seed)
    for info in (int8_info, ort_info, fp16_info):
        if info is not None:
            info["worth"] = worths[info["file"]]
            if info["worth"].get("warning"):
                warnings.append(info["worth"]["warning"])

    # one step: models, cache, then the ranges (which record the cache's hash), then the manifest
    with artifact_step(artifact, force) as step:
        for name, payload in models.items():
            step.write(name, payload)
        cache_info = {"file": CALIBRATION_CACHE, "header": header, "algorithm": algorithm, "trt_version": trt_version,
                      "sha256": step.write(CALIBRATION_CACHE, cache_text.encode())}
        step.write_json(CALIBRATION_RANGES, ranges_document(provenance, ranges, cache_info))
        step.record("calibration", {"method": method, "settings": settings, "synthetic": source.synthetic,
                                    "data": {k: v for k, v in description.items() if k != "shapes"},
                                    "shapes": description["shapes"], "target": target,
                                    "tensors": len(ranges), "reused": reuse, "ranges_file": CALIBRATION_RANGES,
                                    "trt_cache": cache_info})
        for section, info in (("int8", int8_info), ("int8_ort", ort_info), ("fp16", fp16_info)):
            if info is not None:
                step.record(section, info)
        step.record("precision_files", precision_files({**step.manifest["files"], **step.written}))
    return CalibrationRun(recipe.name, folder, method, source.synthetic, reuse, description, len(ranges), header,
                          int8_info, fp16_info, target, ort_info, written, time.perf_counter() - started, warnings)


def _search_feeds(recipe, source) -> list[dict]:
    """Up to SEARCH_BATCHES calibration batches, one per distinct shape first (the search checks
    every candidate on them against PyTorch, so they should span the shapes calibrated on)."""
    distinct: dict[tuple, dict] = {}
    repeats = []
    for feed in source:
        key = tuple((k, v.shape) for k, v in feed.items())
        if key in distinct:
            repeats.append(feed)
        else:
            distinct[key] = feed
        if len(distinct) >= SEARCH_BATCHES or len(repeats) >= 4 * SEARCH_BATCHES:
            break
    return (list(distinct.values()) + repeats)[:SEARCH_BATCHES]


def _worth(recipe, reference, model_path: Path, models: dict[str, bytes], threads, seed: int) -> dict:
    """Per written file: accuracy over the verification sweep against PyTorch, and p50 against FP32 at
    the opt shape, all files in one interleaved run (deploykit.bench.interleave)."""
    feeds = worth.sweep_feeds(recipe, seed)
    if reference.load_module is None:  # no module to run: the sweep's shapes the artifact stored PyTorch's outputs for
        held = reference.held(feeds)
        feeds = [f for f, h in zip(feeds, held) if h] if any(held) else feeds
    expected, _ = worth.reference_outputs(reference, recipe, feeds, fallback_onnx=model_path)
    machine = worth.speed_machine(threads)
    sessions = {MODEL: ort_session(model_path, threads=threads)}
    results = {}
    for name, payload in models.items():
        sessions[name] = ort_session(payload, threads=threads)
        if name == INT8_MODEL:
            # the TensorRT model's meaning, as ONNX defines it (graph optimizations off: no CPU-specific
            # fused kernel); TensorRT itself is checked by `deploykit verify --backend trt` on a GPU
            results[name] = {"accuracy_sweep": {**worth.accuracy(payload, feeds, expected, threads, "disable"),
                                                "runtime": "onnxruntime CPU, graph optimizations off"}}
        else:
            results[name] = {"accuracy_sweep": {**worth.accuracy(payload, feeds, expected, threads),
                                                "runtime": "onnxruntime CPU"}}
    opt = recipe.make_inputs(recipe.case("opt"), seed)
    timed = interleaved({name: (lambda s=s: s.run(None, opt)) for name, s in sessions.items()}, rounds=10)
    for name in models:
        speed = {**worth.speed_record(timed[name], timed[MODEL]), "shape": recipe.case("opt").values,
                 "runtime": "onnxruntime CPU", "machine": machine}
        results[name]["speed_vs_fp32"] = speed
        if name == INT8_MODEL:
            speed["note"] = (f"written for TensorRT (not measured here: no GPU); onnxruntime runs {INT8_ORT_MODEL}")
        elif not speed["faster_than_fp32"]:
            results[name]["warning"] = worth.slower_warning(name, speed)
    return results


def _installed_tensorrt() -> str | None:
    """The local TensorRT <= 10's version, if any (the cache header must name its reader's version).

    Never imported here: the lean runtime can segfault on a machine without a GPU, so the version
    comes from deploykit.trt.probe's subprocess, and only when the package is installed at all.
    """
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return None
    version = probe().tensorrt_version or ""
    return version if version.split(".")[0].isdigit() and int(version.split(".")[0]) <= 10 else None
