"""Build a TensorRT engine with the real TensorRT Python API (imported lazily, GPU machines only).

Builder -> network (explicit batch is the only mode since TensorRT 10; STRONGLY_TYPED when the
precision path says so) -> ``OnnxParser.parse_from_file`` -> BuilderConfig (workspace memory pool,
builder optimization level, timing cache, one optimization profile, precision flags or none,
cache-only calibrator) -> ``build_serialized_network``. The plan is written plain (the serialized
engine bytes, no header: trtexec and Triton load it as is) with its JSON sidecar and the manifest, as one
step (store/writer.py).

API use follows Polygraphy ``backend/trt/loader.py`` (NetworkFromOnnxPath, EngineBytesFromNetwork:
timing-cache save) and ``backend/trt/config.py`` (CreateConfig: set_memory_pool_limit,
builder_optimization_level, create_timing_cache/set_timing_cache(ignore_mismatch=False),
add_optimization_profile, int8_calibrator + set_calibration_profile), and the TensorRT 10->11
Python migration guide for the strongly typed path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..artifact import Artifact
from ..errors import DeployKitError
from ..store.files import read_json, sha256_file
from ..store.layout import CALIBRATION_RANGES, engine_name
from ..store.transaction import atomic_write_bytes
from ..store.writer import artifact_step
from .calibrator import cache_only_calibrator, load_cache
from .precision import PrecisionPlan, check_installed_major
from .probe import ProbeResult
from .shape_profile import Profile
from .sidecar import Sidecar, sidecar_path, write_sidecar
from .trt_log import trt_logger

MAX_OPT_LEVEL = 5  # IBuilderConfig.builder_optimization_level: 0..5, TensorRT's default is 3


@dataclass(frozen=True)
class BuildOptions:
    workspace_gib: float | None = None   # None: TensorRT's default (the device's memory)
    timing_cache: Path | None = None     # read if present, written back after the build
    opt_level: int | None = None
    force: bool = False

    def check(self) -> None:
        if self.workspace_gib is not None and not self.workspace_gib > 0:
            raise DeployKitError(f"--workspace must be a positive number of GiB, got {self.workspace_gib}")
        if self.opt_level is not None and not 0 <= self.opt_level <= MAX_OPT_LEVEL:
            raise DeployKitError(f"--opt-level must be 0..{MAX_OPT_LEVEL} (TensorRT's default is 3), got {self.opt_level}")


@dataclass
class BuildResult:
    name: str
    precision: str
    plan_path: Path
    sidecar_path: Path
    path: str
    seconds: float
    size_bytes: int

    def summary(self) -> dict:
        return {"name": self.name, "precision": self.precision, "plan": str(self.plan_path),
                "sidecar": str(self.sidecar_path), "path": self.path, "seconds": round(self.seconds, 2),
                "size_bytes": self.size_bytes}


def build_engine(artifact: Artifact, recipe, plan: PrecisionPlan, profile: Profile, options: BuildOptions,
                 machine: ProbeResult, on_step=None) -> BuildResult:
    """Build ``plan`` for ``artifact``; the CPU checks (preflight) must have passed already."""
    import tensorrt as trt

    step = on_step or (lambda message: None)
    options.check()
    check_installed_major(plan, trt.__version__)
    started = time.perf_counter()
    plan_file = engine_name(plan.precision)
    plan_path, side_path = artifact.path(plan_file), sidecar_path(artifact.path(plan_file))
    artifact.check_writable((plan_file, side_path.name), options.force)
    onnx_path = artifact.path(plan.onnx)

    logger = trt_logger()
    builder = trt.Builder(logger)
    flags = 0
    if plan.strongly_typed:  # required on 10.x for this path; accepted and ignored on 11.x (always strongly typed)
        flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if flag is not None:
            flags |= 1 << int(flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    step(f"parsing {plan.onnx}")
    # parse_from_file (not parse(bytes)) so the parser can resolve external weights next to the model.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DeployKitError(f"TensorRT's ONNX parser rejected {plan.onnx}: {errors[0] if errors else 'no detail'}{more}")

    config = builder.create_builder_config()
    if options.workspace_gib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    if options.opt_level is not None:
        config.builder_optimization_level = options.opt_level
    for name in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in plan.clear_flags:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is not None:
            config.clear_flag(flag)
    trt_profile = builder.create_optimization_profile()
    for name, p in profile.inputs.items():
        trt_profile.set_shape(name, p.min, p.opt, p.max)
    if config.add_optimization_profile(trt_profile) < 0:
        raise DeployKitError(f"TensorRT refused the optimization profile {profile.describe()}")

    calibrator = None
    if plan.calibration_cache:  # trt-api: 10 (TensorRT 11 removed the calibrator; precision.py plans no cache there)
        cache_path = artifact.path(plan.calibration_cache)
        cache = load_cache(cache_path, trt.__version__)  # refuses a cache this TensorRT would skip
        calibrator = cache_only_calibrator(cache_path.read_bytes(), cache.algorithm)
        config.int8_calibrator = calibrator
        if hasattr(config, "set_calibration_profile"):  # dynamic shapes: calibration uses this profile's opt shape
            config.set_calibration_profile(trt_profile)

    if options.timing_cache is not None:
        _use_timing_cache(config, options.timing_cache, trt.__version__)

    step(f"building the {plan.precision} engine ({plan.description})")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        if calibrator is not None and calibrator.batches_requested:
            raise DeployKitError(f"TensorRT did not accept {plan.calibration_cache} (it asked for calibration data); "
                                 f"re-run `deploykit calibrate {recipe.name}` for TensorRT {trt.__version__}")
        raise DeployKitError(f"TensorRT could not build the {plan.precision} engine for {recipe.name}; see its log above")
    plan_bytes = bytes(serialized)  # IHostMemory exposes the buffer protocol (Polygraphy BytesFromEngine)

    seconds = time.perf_counter() - started
    with artifact_step(artifact, options.force) as step:  # plan, sidecar and manifest published together
        sidecar = Sidecar(
            plan=plan_file, plan_sha256=step.write(plan_file, plan_bytes), tensorrt=trt.__version__,
            gpu={"name": machine.gpu_name, "compute_capability": machine.compute_capability},
            profile=profile.as_dict(), precision=plan.as_dict(),
            onnx={"file": plan.onnx, "sha256": sha256_file(onnx_path)},
            calibration=calibration_provenance(artifact, plan),
            recipe={"name": recipe.name, "sha256": recipe.sha256},
            build={"deploykit": __version__, "workspace_gib": options.workspace_gib, "opt_level": options.opt_level,
                   "timing_cache": str(options.timing_cache) if options.timing_cache else None,
                   "seconds": round(seconds, 2)},
        )
        write_sidecar(step, plan_file, sidecar)
        entry = {"plan": plan_file, "sidecar": side_path.name, "tensorrt": trt.__version__, "gpu": sidecar.gpu,
                 "path": plan.path, "onnx": plan.onnx}
        # merged into the section as it is under the lock: other precisions may have been built since the open
        step.record("trt", lambda section: {**(section if isinstance(section, dict) else {}), plan.precision: entry})
    if options.timing_cache is not None:  # a cache for later builds, not part of the artifact
        atomic_write_bytes(options.timing_cache, bytes(config.get_timing_cache().serialize()))
    return BuildResult(recipe.name, plan.precision, plan_path, side_path, plan.path, seconds, len(plan_bytes))


def _use_timing_cache(config, path: Path, trt_version: str) -> None:
    """Start from the timing cache at ``path`` (an empty one when the file does not exist yet)."""
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is None:  # TensorRT rejected the blob; set_timing_cache(None) would raise a TypeError
        raise DeployKitError(f"{path}: TensorRT {trt_version} cannot read this timing cache (corrupt, or not a "
                             "TensorRT timing cache); remove it or pass another --timing-cache path")
    # ignore_mismatch=False: a cache from another GPU or TensorRT is refused, not silently used.
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise DeployKitError(f"{path} is a timing cache from another GPU or TensorRT version; "
                             "remove it or pass another --timing-cache path")


def calibration_provenance(artifact: Artifact, plan: PrecisionPlan) -> dict | None:
    """Where the INT8 scales came from: the file used, its sha256, and deploykit calibrate's provenance."""
    if plan.precision != "int8":
        return None
    source = plan.calibration_cache or plan.onnx
    record = {"source": source, "sha256": sha256_file(artifact.path(source))}
    ranges = artifact.path(CALIBRATION_RANGES)
    if ranges.is_file():
        record["ranges_file"] = {"file": CALIBRATION_RANGES, "sha256": sha256_file(ranges)}
        try:
            record["provenance"] = read_json(ranges).get("provenance")
        except DeployKitError:
            record["provenance"] = None
    for section in ("int8", "calibration"):  # whatever deploykit calibrate recorded in the manifest
        if section in artifact.manifest:
            record[f"manifest_{section}"] = artifact.manifest[section]
    return record


def _parser_error(error: "tensorrt.ParserError") -> str:  # noqa: F821 -- read by api_check, never evaluated
    """One line from an IParserError (node name and operator when this TensorRT version reports them)."""
    parts = []
    for attr in ("node_name", "node_operator"):
        getter = getattr(error, attr, None)
        if callable(getter):
            try:
                value = getter()
            except Exception:  # older parsers lack the per-node fields
                value = ""
            if value:
                parts.append(str(value))
    desc = error.desc() if callable(getattr(error, "desc", None)) else str(error)
    return (f"node {' '.join(parts)}: " if parts else "") + str(desc).strip().splitlines()[0]
