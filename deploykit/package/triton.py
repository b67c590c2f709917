"""Triton model repositories from artifacts: ``<repo>/<model>/config.pbtxt`` and ``<repo>/<model>/1/model.*``.

The config is built as Triton's own ``ModelConfig`` protobuf (``tritonclient.grpc.model_config_pb2``),
written with ``google.protobuf.text_format`` and parsed back before anything is written, so a config
that Triton's parser would reject never reaches the repository. Then it is checked against the
artifact: names and order, data types, ``-1`` exactly where an axis is dynamic, and a
``max_batch_size`` no larger than the recipe's (= the TensorRT profile's) batch range allows.

Batching (``max_batch_size > 0``) is only offered when Triton's batch convention holds
(deploykit.tensors.batch, the rule the server's batcher uses too). Triton's dims then omit that axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..artifact import Artifact
from ..backends import BACKENDS as BACKEND_TABLE
from ..backends import choices
from ..errors import DeployKitError
from ..onnx_graph import load_model, numpy_dtype
from ..store.files import safe_name
from ..store.layout import PRECISION_MODELS
from ..store.manifest import check_ranks
from ..tensors.batch import BatchAxis, batch_axis
from ..trt.sidecar import read_sidecar
from .publish import publish_package

# rows of the one backend table Triton can run (a triton_platform); "auto" leaves the device to Triton
BACKENDS = choices("package")
_MODEL_FILE = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan"}
_TRITON_BACKEND = {"onnxruntime_onnx": "onnxruntime", "tensorrt_plan": "tensorrt"}
ORT_TRT_PRECISIONS = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}
VERSION = "1"
CONFIG = "config.pbtxt"
_NUMPY_TO_TRITON = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "int64": "TYPE_INT64",
                    "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}


def model_config_pb2():
    """Triton's model-config protobuf module (ships with ``tritonclient[grpc]``)."""
    try:
        from tritonclient.grpc import model_config_pb2 as pb2
    except ImportError as exc:
        raise DeployKitError(f"Triton packaging needs tritonclient's model-config protobuf ({exc}): "
                             "pip install 'tritonclient[grpc]'") from None
    return pb2


def parse_config(text: str):
    """A config.pbtxt parsed by Triton's ModelConfig message; DeployKitError if Triton would reject its syntax."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, model_config_pb2().ModelConfig())
    except text_format.ParseError as exc:
        raise DeployKitError(f"not a valid Triton model config: {exc}") from None


def read_config(path: str | Path):
    return parse_config(Path(path).read_text())


# -- what the artifact allows -----------------------------------------------------------------------
def _onnx_dtypes(path: Path, artifact: Artifact | None = None) -> dict[str, str]:
    """numpy dtype names of the ONNX graph's inputs and outputs (what the shipped file really takes)."""
    model = load_model(path)  # a truncated file is one line
    if artifact is not None:  # a manifest whose ranks are not the model's would give Triton a wrong config
        check_ranks(artifact, {v.name: len(v.type.tensor_type.shape.dim) for v in (*model.graph.input, *model.graph.output)})
    return {v.name: numpy_dtype(v.type.tensor_type.elem_type).name for v in (*model.graph.input, *model.graph.output)}


def _engine_limits(plan: Path, batch: BatchAxis, artifact: Artifact) -> tuple[BatchAxis, Path | None]:
    """The engine's own profile (from its sidecar) caps the batch; its source ONNX gives the I/O dtypes."""
    sidecar = read_sidecar(plan)
    source = artifact.path(sidecar.onnx.get("file", "")) if sidecar.onnx.get("file") else None
    if batch.symbol is None:
        return batch, source if source and source.is_file() else None
    lows = {name: shapes["min"][0] for name, shapes in sidecar.profile.items()}
    highs = {name: shapes["max"][0] for name, shapes in sidecar.profile.items()}
    if not highs:
        return BatchAxis(None, 0, f"{plan.name}'s sidecar records no profile"), None
    if any(v != 1 for v in lows.values()):
        return BatchAxis(None, 0, f"{plan.name}'s profile starts the batch at {max(lows.values())}, not 1"), None
    limit = min(min(highs.values()), batch.limit)
    reason = f"{batch.symbol} is axis 0 of every input and output; {plan.name}'s profile allows [1, {limit}]"
    return BatchAxis(batch.symbol, limit, reason), source if source and source.is_file() else None


# -- the config -------------------------------------------------------------------------------------
@dataclass
class TritonModel:
    name: str
    backend: str
    dir: Path | None  # set once written
    config_text: str
    config: object = field(repr=False)
    model_file: str
    source: Path
    max_batch_size: int
    batch: BatchAxis
    written: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        c = self.config
        return {"name": self.name, "backend": self.backend, "dir": str(self.dir), "source": str(self.source),
                "max_batch_size": c.max_batch_size, "dynamic_batching": c.HasField("dynamic_batching"),
                "inputs": [{"name": i.name, "dims": list(i.dims)} for i in c.input],
                "outputs": [{"name": o.name, "dims": list(o.dims)} for o in c.output],
                "batch": self.batch.reason, "written": self.written}


def _profile_shapes(inputs, ranges, batch: BatchAxis, max_batch: int) -> dict[str, str]:
    """onnxruntime-TensorRT profile options ("x:1x64x8x8,...") from the recipe's min/opt/max."""
    options = {}
    for label in ("min", "opt", "max"):
        values = {}
        for name, r in ranges.items():
            lo, hi = r.min, r.max
            if name == batch.symbol and max_batch:
                hi = min(hi, max_batch)
            values[name] = {"min": lo, "max": hi}.get(label, min(max(r.opt or lo, lo), hi))
        options[f"trt_profile_{label}_shapes"] = ",".join(
            f"{t.name}:{'x'.join(str(d) for d in t.kserve_shape(values))}" for t in inputs)
    return options


def build_config(artifact: Artifact, *, backend: str = "auto", max_batch: int | None = None,
                 dynamic_batching: bool = False, precision: str = "fp32", name: str | None = None) -> TritonModel:
    """The Triton model for ``artifact`` (nothing written yet); DeployKitError when the options do not fit it.

    ``backend`` is a row of the one backend table: ort-cpu / ort-cuda pin Triton's onnxruntime instances to
    the CPU / a GPU, ort-trt adds onnxruntime's TensorRT accelerator at ``precision``, trt ships the engine
    from `deploykit build-trt`; auto ships the ONNX and lets Triton place it."""
    if backend not in BACKENDS:
        raise DeployKitError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISION_MODELS:
        raise DeployKitError(f"--precision must be one of {', '.join(PRECISION_MODELS)}, got {precision!r}")
    pb2 = model_config_pb2()
    row = BACKEND_TABLE["ort-cpu" if backend == "auto" else backend]
    platform = row.triton_platform
    model_file = _MODEL_FILE[platform]
    source_name = row.file(precision)
    if source_name not in artifact.manifest["files"]:
        raise DeployKitError(f"{artifact.dir} has no {source_name}; make it with `{row.make_hint(precision, artifact.name)}`")
    artifact.check_files(source_name)
    source = artifact.path(source_name)

    inputs = artifact.inputs
    outputs = artifact.outputs
    ranges = artifact.dims
    batch = batch_axis(inputs, outputs, ranges)
    onnx_source = source
    if backend == "trt":
        batch, onnx_source = _engine_limits(source, batch, artifact)
    if max_batch is None:
        max_batch = batch.limit
    if max_batch < 0:
        raise DeployKitError(f"--max-batch must be >= 0, got {max_batch}")
    if max_batch > 0 and batch.symbol is None:
        raise DeployKitError(f"{artifact.name} cannot use Triton batching (--max-batch {max_batch}): {batch.reason}; "
                             "use --max-batch 0")
    if max_batch > batch.limit:
        raise DeployKitError(f"--max-batch {max_batch} is larger than {artifact.name} allows: {batch.reason}")
    if dynamic_batching and max_batch == 0:
        raise DeployKitError("--dynamic-batching needs max_batch_size > 0 (Triton's dynamic batcher combines requests "
                             f"along the batch axis; {batch.reason})")

    dtypes = _onnx_dtypes(onnx_source, artifact) if onnx_source is not None else {
        e["name"]: e.get("dtype", "float32") for e in (*artifact.manifest["inputs"], *artifact.manifest["outputs"])}
    fixed = {n: r.min for n, r in ranges.items() if r.is_static}
    name = safe_name(name or artifact.name, "--model-name")  # it becomes a folder of the repository
    config = pb2.ModelConfig(name=name, platform=platform, backend=_TRITON_BACKEND[platform],
                             max_batch_size=max_batch, default_model_filename=model_file)
    # Triton's default policy serves the latest version folder: a stale 2/ in the model folder would be served
    # instead of what deploykit writes to 1/, so the config names the version it ships
    config.version_policy.specific.versions.append(int(VERSION))
    if backend != "auto" and row.triton_instance_kind:
        config.instance_group.add(kind=pb2.ModelInstanceGroup.Kind.Value(row.triton_instance_kind), count=1)
    for infos, add in ((inputs, config.input.add), (outputs, config.output.add)):
        for t in infos:
            if t.name not in dtypes:
                raise DeployKitError(f"{source} has no tensor {t.name!r} (the manifest declares it): re-export")
            if dtypes[t.name] not in _NUMPY_TO_TRITON:
                raise DeployKitError(f"{t.name!r} has dtype {dtypes[t.name]}, which Triton packaging does not map")
            entry = add()
            entry.name = t.name
            entry.data_type = pb2.DataType.Value(_NUMPY_TO_TRITON[dtypes[t.name]])
            entry.dims.extend(t.kserve_shape(fixed)[1 if max_batch > 0 else 0:])
    if dynamic_batching:
        config.dynamic_batching.SetInParent()
    if backend == "ort-trt":
        accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add()
        accelerator.name = "tensorrt"
        accelerator.parameters["precision_mode"] = ORT_TRT_PRECISIONS[precision]
        accelerator.parameters["max_workspace_size_bytes"] = str(1 << 30)
        if any(not r.is_static for r in ranges.values()):
            accelerator.parameters.update(_profile_shapes(inputs, ranges, batch, max_batch))

    from google.protobuf import text_format

    text = text_format.MessageToString(config)
    parsed = parse_config(text)
    if parsed != config:
        raise DeployKitError("the config does not survive a round trip through Triton's parser (a deploykit bug)")
    model = TritonModel(config.name, backend, None, text, parsed, model_file, source, max_batch, batch)
    check_config(parsed, artifact, dtypes)
    return model


def check_config(config, artifact: Artifact, dtypes: dict[str, str] | None = None) -> None:
    """Raise DeployKitError unless a parsed ModelConfig agrees with the artifact it was made from."""
    pb2 = model_config_pb2()
    inputs = artifact.inputs
    outputs = artifact.outputs
    ranges = artifact.dims
    batch = batch_axis(inputs, outputs, ranges)
    fixed = {n: r.min for n, r in ranges.items() if r.is_static}
    problems = []
    if config.max_batch_size > batch.limit:
        problems.append(f"max_batch_size {config.max_batch_size} > {batch.limit} ({batch.reason})")
    if config.HasField("dynamic_batching") and config.max_batch_size == 0:
        problems.append("dynamic_batching with max_batch_size 0")
    skip = 1 if config.max_batch_size > 0 else 0
    for kind, declared, infos in (("input", config.input, inputs), ("output", config.output, outputs)):
        if [d.name for d in declared] != [t.name for t in infos]:
            problems.append(f"{kind} names {[d.name for d in declared]} != artifact {[t.name for t in infos]}")
            continue
        for entry, t in zip(declared, infos):
            want = t.kserve_shape(fixed)[skip:]
            if list(entry.dims) != want:
                problems.append(f"{kind} {t.name!r} dims {list(entry.dims)} != {want}")
            dtype = (dtypes or {}).get(t.name, t.dtype.name)
            if pb2.DataType.Name(entry.data_type) != _NUMPY_TO_TRITON.get(dtype):
                problems.append(f"{kind} {t.name!r} data_type {pb2.DataType.Name(entry.data_type)} != {dtype}")
    if problems:
        raise DeployKitError(f"Triton config for {artifact.name} disagrees with the artifact: {'; '.join(problems)}")


# -- writing the repository -------------------------------------------------------------------------
def package_triton(artifact_dir: str | Path, repo_dir: str | Path, *, force: bool = False, **options) -> TritonModel:
    """Write ``repo_dir/<name>/config.pbtxt`` and ``repo_dir/<name>/1/model.(onnx|plan)``; return what was written.

    Files deploykit wrote before (recorded in the artifact manifest's "triton" section) are replaced;
    anything else needs ``force``. Model first, config last: a polling Triton never sees a config
    without its model.
    """
    artifact = Artifact.open(artifact_dir)
    model = build_config(artifact, **options)
    model.dir = Path(repo_dir) / model.name
    files = {f"{VERSION}/{model.model_file}": model.source.read_bytes(), CONFIG: model.config_text.encode()}
    info = {"backend": model.backend, "max_batch_size": model.max_batch_size, "source": model.source.name}
    publish_package(artifact, "triton", model.dir, files, info, force)  # model before config within it
    model.written.extend(str(model.dir / relative) for relative in files)
    return model


__all__ = ["BACKENDS", "build_config", "check_config", "package_triton", "parse_config", "read_config"]
