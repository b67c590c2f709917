"""build-trt on a GPU machine: real TensorRT engines for every recipe (composite included) at FP32, FP16
and INT8, verified against the PyTorch reference over the shapes their optimization profile covers.

Needs TensorRT 10 or 11, an NVIDIA GPU, and torch with CUDA or cuda-python. Without them every test
here is skipped with the reason the probe gives; REQUIRE_GPU=1 turns those skips into failures (so a
GPU CI job cannot pass by skipping). TensorRT is the real one: nothing is mocked.
"""

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from deploykit.artifact import Artifact
from deploykit.cli import main
from deploykit.errors import DeployKitError
from deploykit.recipe import find_recipe
from deploykit.store.layout import PRECISIONS, engine_name
from deploykit.trt.builder import BuildOptions, build_engine
from deploykit.trt.onnx_support import TrtTarget, default_target
from deploykit.trt.parity import check_engine
from deploykit.trt.preflight import run_preflight
from deploykit.trt.runner import TrtRunner
from deploykit.trt.sidecar import read_sidecar, sidecar_path

from .conftest import recipe_names, require_gpu

pytestmark = pytest.mark.gpu


def provider_skip_reason(wanted: str, session_providers: list[str], ort_version: str) -> str | None:
    """Why an onnxruntime GPU backend cannot be tested: None when the session really runs on ``wanted``.

    onnxruntime-gpu lists TensorrtExecutionProvider as available whenever it was compiled in, and falls back to the
    next provider without an error when TensorRT's libraries cannot be loaded; only the session's own providers say
    what runs it (tested on CPU in test_trt_cpu.py)."""
    if session_providers and session_providers[0] == wanted:
        return None
    ran = ", ".join(session_providers) or "no provider"
    needs = {"TensorrtExecutionProvider": "it loads the TensorRT libraries of its build (onnxruntime-gpu <= 1.26: "
                                          "TensorRT 10, the trt10 extra; 1.27+: TensorRT 11, the trt11 extra)",
             "CUDAExecutionProvider": "it needs the CUDA and cuDNN libraries of the CUDA major it was built for"}
    return f"onnxruntime {ort_version} could not load {wanted} (the session runs on {ran}): {needs.get(wanted, '')}"


@pytest.fixture(scope="session")
def machine():
    return require_gpu()


@pytest.fixture(scope="session")
def trt_artifacts(machine, exported, tmp_path_factory):
    """A private copy of every exported artifact, calibrated once (Q/DQ INT8, TensorRT cache, FP16 ONNX)."""
    from deploykit.calibration.options import CalibrateOptions
    from deploykit.calibration.pipeline import calibrate_artifact

    out, _ = exported
    root = tmp_path_factory.mktemp("trt-artifacts")
    major = int(machine.tensorrt_version.split(".")[0])
    for name in recipe_names():
        shutil.copytree(out / name, root / name)
        # The cache header must name the TensorRT that reads it; TensorRT 11 reads no cache at all.
        calibrate_artifact(find_recipe(name), root, CalibrateOptions(
            synthetic=32, trt_version=machine.tensorrt_version if major <= 10 else None))
    return root


def _build(machine, root, name, precision, **preflight_options):
    recipe = find_recipe(name)
    artifact = Artifact.open(root / name)
    pre = run_preflight(artifact, recipe, [precision], default_target(machine.tensorrt_version), **preflight_options)
    assert pre.clean, [f.problem.line() for f in pre.findings]
    options = BuildOptions(workspace_gib=2.0, timing_cache=root / "timing.cache", force=True)
    return recipe, artifact, pre, build_engine(artifact, recipe, pre.plans[precision], pre.profile, options, machine)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", recipe_names())
def test_engine_matches_pytorch_over_its_profile(machine, trt_artifacts, name, precision):
    import tensorrt as trt

    recipe, artifact, pre, result = _build(machine, trt_artifacts, name, precision)
    plan = result.plan_path
    assert plan.name == engine_name(precision) and sidecar_path(plan).is_file()

    # The plan is plain serialized engine bytes: the bare runtime (as trtexec/Triton do) loads it as is.
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan.read_bytes())
    assert engine is not None
    for input_name, p in pre.profile.inputs.items():
        assert [tuple(s) for s in engine.get_tensor_profile_shape(input_name, 0)] == [p.min, p.opt, p.max]

    sidecar = read_sidecar(plan)
    assert sidecar.tensorrt == machine.tensorrt_version
    assert sidecar.gpu == {"name": machine.gpu_name, "compute_capability": machine.compute_capability}
    assert sidecar.precision["path"] == pre.plans[precision].path
    assert sidecar.onnx["file"] == pre.plans[precision].onnx
    assert (sidecar.calibration is not None) == (precision == "int8")
    assert artifact.manifest["trt"][precision]["plan"] == plan.name

    check = check_engine(Artifact.open(artifact.dir), recipe, precision)
    failed = [c for c in check.cases if not c["passed"]]
    assert len(check.cases) >= 3 and not check.skipped, check.as_dict()
    assert not failed, f"{name} {precision} ({sidecar.precision['path']}): {failed}"


@pytest.mark.parametrize("name", ["composite", "cbam", "fpn"])
def test_int8_from_the_calibration_cache_on_tensorrt_10(machine, trt_artifacts, name):
    if int(machine.tensorrt_version.split(".")[0]) >= 11:
        pytest.skip(f"TensorRT {machine.tensorrt_version} removed the INT8 calibrator (Q/DQ only)")
    recipe, artifact, pre, result = _build(machine, trt_artifacts, name, "int8", int8_source="cache")
    assert pre.plans["int8"].path == "trt10-calibration-cache-int8"
    assert read_sidecar(result.plan_path).calibration["source"] == "calibration.cache"
    check = check_engine(Artifact.open(artifact.dir), recipe, "int8")
    assert check.passed, check.as_dict()


def test_engine_from_another_tensorrt_or_gpu_is_refused(machine, trt_artifacts, tmp_path):
    _, _, _, result = _build(machine, trt_artifacts, "se", "fp32")
    plan = tmp_path / result.plan_path.name
    shutil.copy(result.plan_path, plan)
    original = json.loads(sidecar_path(result.plan_path).read_text())
    for change, message in ((("tensorrt", "9.9.9"), "built with TensorRT 9.9.9"),
                            (("gpu", {"name": "Other GPU", "compute_capability": "1.0"}), "built for Other GPU")):
        sidecar_path(plan).write_text(json.dumps({**original, change[0]: change[1]}))
        with pytest.raises(DeployKitError, match=message):
            with TrtRunner(plan):
                pass
    sidecar_path(plan).write_text(json.dumps(original))
    with TrtRunner(plan) as runner:  # the unmodified sidecar loads
        recipe = find_recipe("se")
        outputs = runner.infer(recipe.make_inputs(recipe.case("opt")))
        assert set(outputs) == {t.name for t in recipe.outputs}
        too_big = recipe.case("max")
        feed = {k: v.repeat(2, axis=0) for k, v in recipe.make_inputs(too_big).items()}
        with pytest.raises(DeployKitError, match="outside the engine's profile"):
            runner.infer(feed)


def test_unreadable_timing_cache_and_other_major_are_one_line_errors(machine, trt_artifacts, tmp_path):
    recipe = find_recipe("se")
    artifact = Artifact.open(trt_artifacts / "se")
    target = default_target(machine.tensorrt_version)
    pre = run_preflight(artifact, recipe, ["fp32"], target)
    garbage = tmp_path / "garbage.cache"
    garbage.write_bytes(b"not a TensorRT timing cache" * 16)
    with pytest.raises(DeployKitError, match="timing cache") as refused:
        build_engine(artifact, recipe, pre.plans["fp32"], pre.profile,
                     BuildOptions(timing_cache=garbage, force=True), machine)
    assert "\n" not in str(refused.value)
    other = run_preflight(artifact, recipe, ["fp32"], TrtTarget("11.0" if target.major == 10 else "10.15"))
    with pytest.raises(DeployKitError, match=f"planned for TensorRT {11 if target.major == 10 else 10}.x"):
        build_engine(artifact, recipe, other.plans["fp32"], other.profile, BuildOptions(force=True), machine)


def test_cli_builds_checks_and_reports(machine, trt_artifacts):
    result = CliRunner().invoke(main, ["build-trt", "eca", "--fp32", "--fp16", "--int8", "--force", "--opt-level", "2",
                                       "--timing-cache", str(trt_artifacts / "timing.cache"), "--json",
                                       "--out", str(trt_artifacts)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(b["precision"] for b in report["builds"]) == ["fp16", "fp32", "int8"]
    assert all(c["passed"] for c in report["engine_checks"]) and len(report["engine_checks"]) == 3
    assert (trt_artifacts / "timing.cache").stat().st_size > 0


@pytest.mark.parametrize("backend", ["trt", "ort-cuda", "ort-trt"])
def test_verify_harness_gpu_backends(machine, trt_artifacts, backend):
    """`deploykit verify --backend trt` runs TrtRunner; onnxruntime's CUDA/TensorRT providers are the second path."""
    from deploykit.verify import VerifyOptions, verify_artifact

    recipe = find_recipe("composite")
    if backend != "trt":
        import onnxruntime

        wanted = {"ort-cuda": "CUDAExecutionProvider", "ort-trt": "TensorrtExecutionProvider"}[backend]
        # get_available_providers() lists the providers compiled in, not the ones whose libraries load: ask a session.
        session = onnxruntime.InferenceSession(str(trt_artifacts / "composite" / "model.onnx"),
                                               providers=[wanted, "CPUExecutionProvider"])
        reason = provider_skip_reason(wanted, session.get_providers(), onnxruntime.__version__)
        if reason:
            if os.environ.get("REQUIRE_GPU") == "1":
                pytest.fail(f"REQUIRE_GPU=1 but {reason}")
            pytest.skip(reason)
    if backend == "trt":
        _build(machine, trt_artifacts, "composite", "fp32")
    run = verify_artifact(recipe, trt_artifacts, VerifyOptions(backend=backend, precision="fp32", write=False))
    assert run.passed, [(c.label, c.error, [m.failures for m in c.outputs]) for c in run.cases if not c.passed]
