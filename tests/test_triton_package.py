"""deploykit package --triton: a repository whose config Triton's own protobuf parses and that fits the artifact."""

import json

import numpy as np
import onnx
import pytest
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402  (in the test extra)

from deploykit.errors import DeployKitError  # noqa: E402
from deploykit.package import PackageOptions, PackageResult, package_artifact  # noqa: E402
from deploykit.package.triton import package_triton  # noqa: E402
from deploykit.tensors.batch import batch_axis  # noqa: E402
from deploykit.tensors.shapes import parse_dim  # noqa: E402
from deploykit.tensors.spec import DimSpec, TensorSpec  # noqa: E402

from .artifact_cache import artifact_copy  # noqa: E402
from .conftest import require_gpu


def _parse(path):
    """Parse with Triton's ModelConfig message directly, independent of deploykit's helpers."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _type(config_entry):
    return model_config_pb2.DataType.Name(config_entry.data_type)


class _Copies(dict):
    """Private artifact copies, made on first use (composite's export is ~20 s; only its own test needs it)."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.factory, self.folder = tmp_path_factory, tmp_path_factory.mktemp("artifacts")

    def __missing__(self, name):
        self[name] = artifact_copy(self.factory, name, self.folder)
        return self[name]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return _Copies(tmp_path_factory)


@pytest.mark.slow  # the network's export; cbam and fpn cover the rest of packaging in the fast tier
def test_composite_repository(artifacts, tmp_path):
    repo = tmp_path / "repo"
    model = package_triton(artifacts["composite"], repo)
    config = _parse(repo / "composite" / "config.pbtxt")
    assert (config.name, config.platform, config.backend) == ("composite", "onnxruntime_onnx", "onnxruntime")
    assert config.max_batch_size == 4  # recipes/composite.toml: B max 4, min 1 -> batchable; dims omit B
    assert [(i.name, _type(i), list(i.dims)) for i in config.input] == [("image", "TYPE_FP32", [3, -1, -1])]
    assert [(o.name, _type(o), list(o.dims)) for o in config.output] == [("logits", "TYPE_FP32", [4, -1, -1])]
    assert not config.HasField("dynamic_batching") and not config.HasField("optimization")
    assert not config.instance_group  # --backend auto: Triton places the model (a GPU when it has one)
    shipped = repo / "composite" / "1" / "model.onnx"
    assert shipped.read_bytes() == (artifacts["composite"] / "model.onnx").read_bytes()
    graph = onnx.load(str(shipped)).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["logits"]
    assert model.written == [str(shipped), str(repo / "composite" / "config.pbtxt")]


def test_multi_input_model_without_triton_batching(artifacts, tmp_path):
    package_triton(artifacts["fpn"], tmp_path, max_batch=0)
    config = _parse(tmp_path / "fpn" / "config.pbtxt")
    assert config.max_batch_size == 0
    manifest = json.loads((artifacts["fpn"] / "manifest.json").read_text())
    assert [i.name for i in config.input] == [i["name"] for i in manifest["inputs"]] == ["C3", "C4", "C5"]
    assert [o.name for o in config.output] == ["P3", "P4", "P5", "P6", "P7"]
    # the batch axis stays, dynamic like H and W; channels are the recipe's static sizes
    assert [list(i.dims) for i in config.input] == [[-1, 16, -1, -1], [-1, 32, -1, -1], [-1, 64, -1, -1]]
    assert {_type(t) for t in (*config.input, *config.output)} == {"TYPE_FP32"}


def test_dynamic_batching_and_the_onnxruntime_tensorrt_accelerator(artifacts, tmp_path):
    package_triton(artifacts["fpn"], tmp_path, max_batch=2, dynamic_batching=True, backend="ort-trt")
    config = _parse(tmp_path / "fpn" / "config.pbtxt")
    assert config.max_batch_size == 2 and config.HasField("dynamic_batching")
    assert [list(i.dims) for i in config.input] == [[16, -1, -1], [32, -1, -1], [64, -1, -1]]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP32"
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group] == ["KIND_GPU"]
    # the profile is the recipe's min/opt/max (batch capped at max_batch_size), related inputs consistent
    assert accelerator.parameters["trt_profile_min_shapes"] == "C3:1x16x16x16,C4:1x32x8x8,C5:1x64x4x4"
    assert accelerator.parameters["trt_profile_opt_shapes"] == "C3:2x16x32x32,C4:2x32x16x16,C5:2x64x8x8"
    assert accelerator.parameters["trt_profile_max_shapes"] == "C3:2x16x64x64,C4:2x32x32x32,C5:2x64x16x16"


@pytest.mark.parametrize("options, message", [
    ({"max_batch": 9}, r"--max-batch 9 is larger than cbam allows: B is axis 0 .* range \[1, 8\]"),
    ({"max_batch": 0, "dynamic_batching": True}, "--dynamic-batching needs max_batch_size > 0"),
    ({"backend": "trt"}, r"has no model\.fp32\.plan; make it with `deploykit build-trt cbam --fp32`"),
    ({"backend": "ort-trt", "precision": "int8"}, r"has no model\.int8\.onnx; make it with `deploykit calibrate cbam --target trt`"),
    ({"precision": "fp16"}, r"has no model\.fp16\.onnx; make it with `deploykit calibrate cbam`"),
    ({"backend": "tensorrt"}, "--backend must be one of auto, ort-cpu, ort-cuda, ort-trt, trt"),
])
def test_options_that_do_not_fit_the_artifact_are_refused_before_writing(artifacts, tmp_path, options, message):
    with pytest.raises(DeployKitError, match=message):
        package_triton(artifacts["cbam"], tmp_path, **options)
    assert not (tmp_path / "cbam").exists()


def test_rewrites_its_own_files_but_not_a_users(artifacts, tmp_path):
    package_triton(artifacts["cbam"], tmp_path)
    package_triton(artifacts["cbam"], tmp_path, max_batch=4)  # deploykit's own files: replaced
    config_path = tmp_path / "cbam" / "config.pbtxt"
    assert _parse(config_path).max_batch_size == 4
    config_path.write_text(config_path.read_text() + "\n# tuned by hand\n")
    with pytest.raises(DeployKitError, match="config.pbtxt exists and was modified since deploykit wrote it"):
        package_triton(artifacts["cbam"], tmp_path)
    package_triton(artifacts["cbam"], tmp_path, force=True)
    assert _parse(config_path).max_batch_size == 8
    record = json.loads((artifacts["cbam"] / "manifest.json").read_text())["triton"]
    assert record[str((tmp_path / "cbam").resolve())]["max_batch_size"] == 8


def _tensor(name, *dims):
    return TensorSpec(name, tuple(parse_dim(d) for d in dims), dtype=np.dtype("float32"))


@pytest.mark.parametrize("tensors, ranges, limit, reason", [
    ([_tensor("x", "B", 3, "H"), _tensor("y", "B", "H")], {"B": DimSpec("B", 1, 1, 6), "H": DimSpec("H", 1, 1, 9)},
     6, "range [1, 6]"),
    ([_tensor("x", "B", 3), _tensor("y", 3, "B")], {"B": DimSpec("B", 1, 1, 6)}, 0, "axis 0 of 'y' is not B"),
    ([_tensor("x", "B", "B")], {"B": DimSpec("B", 1, 1, 6)}, 0, "B also sizes a non-batch axis"),
    ([_tensor("x", "2*B", 3)], {"B": DimSpec("B", 1, 1, 6)}, 0, "axis 0 of 'x' is not B"),
    ([_tensor("x", "B", 3)], {"B": DimSpec("B", 2, 2, 6)}, 0, "must accept every batch from 1"),
    ([_tensor("x", "T", 3)], {"T": DimSpec("T", value=24, reason="fixed by weights")}, 0, "fixed at 24"),
    ([_tensor("x", 1, "H")], {"H": DimSpec("H", 1, 1, 9)}, 0, "axis 0 of 'x' is static"),
])
def test_batch_axis_rules(tensors, ranges, limit, reason):
    batch = batch_axis(tuple(tensors[:1]), tuple(tensors[1:]), ranges)
    assert batch.limit == limit and reason in batch.reason


def test_cli(artifacts, tmp_path):
    from click.testing import CliRunner

    from deploykit.cli import main

    out = str(artifacts["cbam"].parent)
    result = CliRunner().invoke(main, ["package", "cbam", "--triton", str(tmp_path), "--out", out, "--json",
                                       "--dynamic-batching"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["max_batch_size"] == 8 and summary["dynamic_batching"] is True
    assert summary["inputs"] == [{"name": "x", "dims": [64, -1, -1]}]
    assert _parse(tmp_path / "cbam" / "config.pbtxt").dynamic_batching is not None
    result = CliRunner().invoke(main, ["package", "cbam", "--triton", str(tmp_path), "--out", out, "--max-batch", "99"])
    assert result.exit_code == 2 and "error: --max-batch 99 is larger" in result.output


def _placeholder_engine(folder, batch_max):
    """Packaging copies a plan and reads its sidecar; it never deserializes it, so these bytes stand in for one."""
    from deploykit.artifact import Artifact
    from deploykit.store.writer import artifact_step
    from deploykit.trt.sidecar import Sidecar, write_sidecar

    plan = folder / "model.fp32.plan"
    profile = {"x": {"min": [1, 64, 8, 8], "opt": [2, 64, 32, 32], "max": [batch_max, 64, 64, 64]}}
    with artifact_step(Artifact.open(folder)) as step:  # as build-trt records an engine
        digest = step.write(plan.name, b"placeholder engine bytes")
        write_sidecar(step, plan.name, Sidecar(plan=plan.name, plan_sha256=digest, tensorrt="10.15.0",
                                               gpu={"name": "NVIDIA A10", "compute_capability": "8.6"}, profile=profile,
                                               precision={"precision": "fp32"},
                                               onnx={"file": "model.onnx", "sha256": "0" * 64}))
        step.record("trt", {"fp32": plan.name})
    return plan


def test_tensorrt_plan_repository_follows_the_engine_profile(tmp_path, tmp_path_factory):
    folder = artifact_copy(tmp_path_factory, "cbam", tmp_path / "artifacts")
    plan = _placeholder_engine(folder, batch_max=2)
    repo = tmp_path / "repo"
    with pytest.raises(DeployKitError, match=r"--max-batch 4 is larger .*profile allows \[1, 2\]"):
        package_triton(folder, repo, backend="trt", max_batch=4)
    package_triton(folder, repo, backend="ort-cpu")
    config = _parse(repo / "cbam" / "config.pbtxt")
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group] == ["KIND_CPU"]
    package_triton(folder, repo, backend="trt", dynamic_batching=True)
    config = _parse(repo / "cbam" / "config.pbtxt")
    assert (config.platform, config.backend, config.default_model_filename) == ("tensorrt_plan", "tensorrt", "model.plan")
    assert config.max_batch_size == 2 and config.HasField("dynamic_batching")
    assert [(i.name, _type(i), list(i.dims)) for i in config.input] == [("x", "TYPE_FP32", [64, -1, -1])]
    assert (repo / "cbam" / "1" / "model.plan").read_bytes() == plan.read_bytes()
    assert not (repo / "cbam" / "1" / "model.onnx").exists()  # deploykit's own earlier file, removed on the switch




@pytest.mark.gpu
def test_tensorrt_repository_from_a_real_engine(tmp_path, tmp_path_factory):
    require_gpu()
    from click.testing import CliRunner

    from deploykit.cli import main

    folder = artifact_copy(tmp_path_factory, "composite", tmp_path)
    result = CliRunner().invoke(main, ["build-trt", folder.name, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package_triton(folder, tmp_path / "repo", backend="trt")
    config = _parse(tmp_path / "repo" / folder.name / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size >= 1
    shipped = (tmp_path / "repo" / folder.name / "1" / "model.plan").read_bytes()
    assert shipped == (folder / "model.fp32.plan").read_bytes()


def test_the_library_call_under_the_command(artifacts, tmp_path):
    with pytest.raises(DeployKitError, match="say where to package"):
        package_artifact(artifacts["cbam"])
    result = package_artifact(artifacts["cbam"], PackageOptions(triton=tmp_path / "repo", backend="ort-cpu",
                                                                max_batch=2))
    assert isinstance(result, PackageResult) and result.kserve is None and result.exit_code == 0
    assert result.written == [str(tmp_path / "repo" / "cbam" / "1" / "model.onnx"),
                              str(tmp_path / "repo" / "cbam" / "config.pbtxt")]
    config = _parse(tmp_path / "repo" / "cbam" / "config.pbtxt")
    # the instance kind is the ort-cpu row's column of the backend table
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group] == ["KIND_CPU"]
    assert result.to_dict()["max_batch_size"] == config.max_batch_size == 2
