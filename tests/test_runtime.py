"""deploykit.runtime: the best backend here, checked inputs, results equal to PyTorch."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from deploykit import runtime
from deploykit.artifact import Artifact
from deploykit.errors import DeployKitError
from deploykit.parity.metrics import compare_outputs
from deploykit.recipe import find_recipe
from deploykit.runners.torch_runner import TorchRunner

from .artifact_cache import exported_artifact
from .conftest import RECIPES, require_gpu, slow_composite

MODELS = ["se", "cbam", "fpn", "composite"]  # one input, one input, three related inputs + five outputs, the network


@pytest.fixture(scope="module")
def fpn(tmp_path_factory):
    return runtime.load(exported_artifact(tmp_path_factory, "fpn"), backend="ort-cpu")


@pytest.mark.parametrize("name", slow_composite(MODELS))
def test_matches_pytorch(tmp_path_factory, name):
    recipe = find_recipe(name, RECIPES)
    folder = exported_artifact(tmp_path_factory, name)
    reference = Artifact.open(folder).reference_model(recipe)
    off_grid = [c for c in recipe.sweep() if c.label.startswith("off-grid")][:1]
    with runtime.load(folder) as session, TorchRunner(reference, recipe) as torch_runner:
        assert session.backend in ("trt", "ort-cuda", "ort-cpu")
        assert session.input_names == [t.name for t in recipe.inputs]
        for case in [recipe.case("min"), recipe.case("max"), *off_grid]:
            feed = recipe.make_inputs(case)
            outputs = session.run(feed)
            assert list(outputs) == [t.name for t in recipe.outputs]
            expected = torch_runner.infer(feed)
            for metrics in compare_outputs(outputs, expected, recipe.tolerance("fp32")):
                assert metrics.passed, (case.describe(), metrics.name, metrics.failures)


def test_auto_records_why_it_passed_over_each_backend(tmp_path_factory):
    with runtime.load(exported_artifact(tmp_path_factory, "cbam")) as session:
        order = ["trt", "ort-cuda", "ort-cpu"]
        # every backend before the chosen one was tried and passed over, with a reason
        assert list(session.skipped) == order[:order.index(session.backend)]
        assert all(reason.strip() for reason in session.skipped.values())
        # the tests never build engines, so TensorRT is passed over for the missing plan
        assert "model.fp32.plan" in session.skipped["trt"]
        described = session.describe()
        assert described["backend"] == session.backend and described["skipped"] == session.skipped


def test_ort_cuda_is_refused_when_onnxruntime_would_fall_back_to_cpu(tmp_path_factory):
    import onnxruntime

    folder = exported_artifact(tmp_path_factory, "cbam")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        with runtime.load(folder, backend="ort-cuda") as session:  # must really run on CUDA
            assert session.runner.session.get_providers()[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(DeployKitError, match="backend ort-cuda is not available: .*CUDAExecutionProvider"):
            runtime.load(folder, backend="ort-cuda")


def test_explicit_trt_without_an_engine_says_how_to_build_one(tmp_path_factory):
    message = r"backend trt is not available: .* has no model\.fp32\.plan.*deploykit build-trt cbam"
    with pytest.raises(DeployKitError, match=message):
        runtime.load(exported_artifact(tmp_path_factory, "cbam"), backend="trt")


def _fpn_feed(B=2, H=8, W=8):
    rng = np.random.default_rng(0)
    return {"C3": rng.standard_normal((B, 16, 4 * H, 4 * W), dtype=np.float32),
            "C4": rng.standard_normal((B, 32, 2 * H, 2 * W), dtype=np.float32),
            "C5": rng.standard_normal((B, 64, H, W), dtype=np.float32)}


@pytest.mark.parametrize("change, message", [
    (lambda f: {**f, "C6": f["C5"]}, r"unexpected \['C6'\]"),
    (lambda f: {k: v for k, v in f.items() if k != "C3"}, r"missing \['C3'\]"),
    (lambda f: {**f, "C3": f["C3"].astype(np.float64)}, r"'C3' has dtype float64, expected float32"),
    (lambda f: {**f, "C5": f["C5"][0]}, r"'C5' has rank 3 .*expected 4 \(B, 64, H, W\)"),
    (lambda f: {**f, "C5": np.zeros((2, 63, 8, 8), np.float32)}, r"'C5' axis 1 is 63, the model fixes it at 64"),
    (lambda f: {**f, "C4": f["C4"][:, :, :14]},
     r"'C4' axis 2 is 14, so H=7 \(2\*H\), but .* gives H=8: inputs must agree"),
    (lambda f: {**f, "C3": f["C3"][:, :, :31]}, r"'C3' axis 2 is 31, which is not 4\*H for any whole H"),
    (lambda f: _fpn_feed(B=5), r"B=5 .* is outside the artifact's range \[1, 4\]"),
    (lambda f: _fpn_feed(H=20), r"H=20 .* is outside the artifact's range \[4, 16\]"),
    (lambda f: _fpn_feed(W=6), r"W=6 .* must be a multiple of 4"),
    (lambda f: {**f, "C5": f["C5"].tolist()}, r"'C5' must be a numpy array, got list"),
    (lambda f: list(f.values()), r"inputs must be a dict"),
])
def test_input_errors_name_the_input_and_the_rule(fpn, change, message):
    with pytest.raises(DeployKitError, match=message):
        fpn.run(change(_fpn_feed()))


def test_outputs_can_be_selected(fpn):
    feed = _fpn_feed()
    everything = fpn.run(feed)
    assert list(fpn.run(feed, outputs=["P7", "P3"])) == ["P7", "P3"]
    np.testing.assert_array_equal(fpn.run(feed, outputs=["P7"])["P7"], everything["P7"])
    with pytest.raises(DeployKitError, match=r"unknown output\(s\) \['P8'\]"):
        fpn.run(feed, outputs=["P8"])


def test_concurrent_runs_on_one_session_match_serial_runs(fpn):
    feeds = [_fpn_feed(B=1 + i % 4, H=4 * (1 + i % 4), W=4 * (1 + (i + 1) % 4)) for i in range(16)]
    serial = [fpn.run(f) for f in feeds]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(fpn.run, feeds))
    for a, b in zip(serial, parallel):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_load_errors(tmp_path, tmp_path_factory):
    with pytest.raises(DeployKitError, match="no artifact in"):
        runtime.load(tmp_path)
    with pytest.raises(DeployKitError, match="backend must be one of auto, ort-cpu, ort-cuda, ort-trt, trt"):
        runtime.load(exported_artifact(tmp_path_factory, "se"), backend="gpu")
    with pytest.raises(DeployKitError, match="precision must be one of"):
        runtime.load(exported_artifact(tmp_path_factory, "se"), precision="bf16")


def test_a_modified_model_is_refused(tmp_path, tmp_path_factory):
    import shutil

    folder = shutil.copytree(exported_artifact(tmp_path_factory, "se"), tmp_path / "se")
    with open(folder / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(DeployKitError, match="does not match the sha256 in its manifest"):
        runtime.load(folder, backend="ort-cpu")


# -- TensorRT: passed over here with the reason; exercised for real on a GPU machine ---------------------


def test_auto_passes_over_an_engine_this_machine_cannot_run(tmp_path, tmp_path_factory):
    """A plan without a sidecar, then one whose sidecar names another TensorRT/GPU: auto falls back to onnxruntime."""
    import shutil

    from deploykit.store.files import sha256_file
    from deploykit.store.writer import artifact_step
    from deploykit.trt.probe import probe
    from deploykit.trt.sidecar import Sidecar, write_sidecar

    folder = shutil.copytree(exported_artifact(tmp_path_factory, "cbam"), tmp_path / "cbam")
    plan = folder / "model.fp32.plan"
    plan.write_bytes(b"not an engine")
    with runtime.load(folder) as session:  # not recorded in the manifest: not deploykit's engine
        assert session.backend != "trt" and "has no model.fp32.plan" in session.skipped["trt"]
    with artifact_step(Artifact.open(folder), force=True) as step:  # recorded as deploykit's, without a sidecar
        step.write(plan.name, plan.read_bytes())
        step.record("trt", {"fp32": plan.name})
    with runtime.load(folder) as session:
        assert session.backend != "trt" and "has no sidecar" in session.skipped["trt"]
    with artifact_step(Artifact.open(folder)) as step:
        write_sidecar(step, plan.name, Sidecar(plan=plan.name, plan_sha256=sha256_file(plan), tensorrt="0.0.1",
                                               gpu={"name": "no such GPU", "compute_capability": "0.0"}, profile={},
                                               precision={"precision": "fp32"},
                                               onnx={"file": "model.onnx", "sha256": "0" * 64}))
    with runtime.load(folder) as session:
        assert session.backend != "trt" and session.skipped["trt"]
        if not probe().ok:  # no TensorRT or GPU here: the runner's own one-line reason is recorded
            assert session.skipped["trt"] == probe().missing
        else:  # a real TensorRT refuses the sidecar's version before touching the bytes
            assert "built with TensorRT 0.0.1" in session.skipped["trt"]
    with pytest.raises(DeployKitError, match="backend trt is not available"):
        runtime.load(folder, backend="trt")


@pytest.mark.gpu
def test_tensorrt_engine_is_preferred_and_matches_pytorch(tmp_path, tmp_path_factory):
    require_gpu()
    import shutil

    from click.testing import CliRunner

    from deploykit.cli import main

    folder = shutil.copytree(exported_artifact(tmp_path_factory, "cbam"), tmp_path / "cbam")
    result = CliRunner().invoke(main, ["build-trt", "cbam", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    recipe = find_recipe("cbam", RECIPES)
    with runtime.load(folder) as session, \
            TorchRunner(Artifact.open(folder).reference_model(recipe), recipe) as reference:
        assert session.backend == "trt" and "trt" not in session.skipped
        for case in (recipe.case("min"), recipe.case("max")):
            feed = recipe.make_inputs(case)
            for metrics in compare_outputs(session.run(feed), reference.infer(feed), recipe.tolerance("fp32")):
                assert metrics.passed, (case.describe(), metrics.failures)
        with pytest.raises(DeployKitError, match="outside the artifact's range"):
            session.run({"x": np.zeros((9, 64, 8, 8), np.float32)})
