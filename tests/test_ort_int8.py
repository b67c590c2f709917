"""The onnxruntime INT8 model (calibration/ort_int8.py, ort_search.py): the same function on every CPU,
SiLU rewritten exactly, and calibrate's per-file report. Correctness only: no test asserts a speed."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploykit.artifact import Artifact
from deploykit.calibration.ort_int8 import WEIGHT_BOUND, quantize_ort, saturation_problems, silu_as_quickgelu
from deploykit.calibration.options import CalibrateOptions
from deploykit.calibration.pipeline import calibrate_artifact
from deploykit.calibration.ranges import Ranges, TensorRange
from deploykit.recipe import find_recipe
from deploykit.store.layout import INT8_MODEL, INT8_ORT_MODEL
from tests.artifact_cache import artifact_copy
from tests.conftest import RECIPES


def _session(model: onnx.ModelProto, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _kernels(model: onnx.ModelProto, tmp_path) -> set[str]:
    """The op types of onnxruntime's optimized graph (what its CPU kernels will run)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return {n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}


def _worst_case_conv():
    """A float Conv whose quantized form saturates VPMADDUBSW if anything can: inputs at the top of their
    range (UINT8 255) and every weight at the largest magnitude, all of one sign, so each int16 pair sum
    is 255 * |w| * 2 (8-bit weights: 64770, far above 32767)."""
    weight = np.full((8, 16, 3, 3), 0.5, np.float32)
    weight[::2] *= -1  # both signs across output channels, one sign within each
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    amax = 16 * 9 * 0.5 * 4.0  # |y| at most
    ranges = Ranges("minmax", {}, {"x": TensorRange(0.0, 4.0), "y": TensorRange(-amax, amax)})
    return model, ranges, amax


def test_onnxruntime_int8_is_the_same_function_on_every_cpu(tmp_path):
    model, ranges, amax = _worst_case_conv()
    quantized = quantize_ort(model, ranges, ["conv"])
    assert saturation_problems(quantized) == []
    inits = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    weights = [v for v in inits.values() if v.dtype == np.int8 and v.ndim == 4]
    assert weights and int(np.abs(weights[0].astype(int)).max()) == WEIGHT_BOUND  # 7-bit: 255 * 64 * 2 <= 32767
    assert "QLinearConv" in _kernels(quantized, tmp_path)  # onnxruntime's fused INT8 kernel runs it
    feed = {"x": np.full((1, 16, 8, 8), 4.0, np.float32)}
    feed["x"][..., ::3] = 3.9  # not one constant
    as_written = _session(quantized, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feed)[0]  # ONNX semantics
    fused = _session(quantized).run(None, feed)[0]
    step = 2 * amax / 255  # one output step
    # true on any CPU: VNNI/AMX/ARM never saturate, and AVX2/AVX-512BW cannot with |w| <= 64
    assert np.abs(fused - as_written).max() <= step * 1.01


def test_tensorrt_style_weights_are_reported_as_saturating():
    """The TensorRT model (INT8 activations, 8-bit weights) is not an onnxruntime CPU model: the check names why."""
    weight = numpy_helper.from_array(np.array([[[[127, -127]]]], np.int8), "w_q")
    inits = [weight, numpy_helper.from_array(np.array(0.01, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["x_q"], name="q"),
             helper.make_node("DequantizeLinear", ["x_q", "s", "z"], ["x_dq"], name="dq"),
             helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w_dq"], name="dq_w"),
             helper.make_node("Conv", ["x_dq", "w_dq"], ["y"], name="conv")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 1])], inits)
    problems = saturation_problems(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert problems == ["q: activation quantized to INT8", "dq_w: INT8 weight beyond +-64"]


def test_silu_becomes_quickgelu_and_attention_gates_stay():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], name="silu/sigmoid"),
             helper.make_node("Mul", ["x", "s"], ["a"], name="silu/mul"),  # SiLU: x * sigmoid(x)
             helper.make_node("Sigmoid", ["g"], ["gs"], name="gate/sigmoid"),
             helper.make_node("Mul", ["a", "gs"], ["y"], name="gate/mul")]  # a gate: a * sigmoid(g)
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 8]) for n in ("x", "g", "y")]
    model = helper.make_model(helper.make_graph(nodes, "g", io[:2], io[2:]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    rewritten, count = silu_as_quickgelu(model)
    assert count == 1
    assert [(n.op_type, n.name, list(n.output)) for n in rewritten.graph.node] == [
        ("QuickGelu", "silu/mul", ["a"]), ("Sigmoid", "gate/sigmoid", ["gs"]), ("Mul", "gate/mul", ["y"])]
    feed = {"x": rng.normal(0, 3, (2, 8)).astype(np.float32), "g": rng.normal(0, 3, (2, 8)).astype(np.float32)}
    plain = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    np.testing.assert_allclose(_session(rewritten, plain).run(None, feed)[0], _session(model, plain).run(None, feed)[0],
                               rtol=1e-6, atol=1e-7)
    same, none = silu_as_quickgelu(rewritten)
    assert none == 0 and same is rewritten


@pytest.fixture(scope="module")
def cbam_ort(tmp_path_factory):
    out = tmp_path_factory.mktemp("ort-int8")
    artifact_copy(tmp_path_factory, "cbam", out)
    recipe = find_recipe("cbam", RECIPES)
    return recipe, out, calibrate_artifact(recipe, out, CalibrateOptions(synthetic=8, target="ort", fp16=False))


@pytest.mark.slow  # the full suite: a calibration with its INT8 search (~6 s), shared with the test below
def test_calibrate_target_ort_records_policy_accuracy_speed_and_warns_when_not_faster(cbam_ort):
    recipe, out, run = cbam_ort
    folder = out / "cbam"
    assert run.int8 is None and not (folder / INT8_MODEL).exists()  # --target ort: no TensorRT model
    model = onnx.load(str(folder / INT8_ORT_MODEL))
    assert saturation_problems(model) == []
    manifest = Artifact.open(folder).manifest
    Artifact.open(folder).check_files(INT8_ORT_MODEL)
    assert manifest["precision_files"]["int8"] == {"onnxruntime": INT8_ORT_MODEL}
    info = manifest["int8_ort"]
    policy = info["policy"]
    labels = [c["label"] for c in policy["candidates"]]
    assert labels[0] == "compute" and "compute (repeat)" in labels
    assert {g["name"] for g in policy["groups"]} >= {"compute", "Sigmoid+Mul"}
    chosen = next(c for c in policy["candidates"] if c["label"] == policy["chosen"])
    assert chosen["accurate"] and all(c["cost_us"] and min(c["cost_us"].values()) > 0 for c in policy["candidates"])
    accuracy, speed = info["worth"]["accuracy_sweep"], info["worth"]["speed_vs_fp32"]
    assert accuracy["feeds"] == len(recipe.sweep()) and accuracy["cosine_min"] >= recipe.tolerance("int8").cosine_min
    assert speed["shape"] == recipe.case("opt").values and speed["machine"]["threads"] == 2
    assert "cpu_flags" in speed["machine"]
    # one warning line exactly when the file is not faster (p50 and fastest call), recorded with it
    warned = [w for w in run.warnings if w.startswith(f"{INT8_ORT_MODEL} is not faster")]
    assert len(warned) == (not speed["faster_than_fp32"])
    assert info["worth"].get("warning") == (warned[0] if warned else None)
    assert speed["faster_than_fp32"] == (speed["p50_ms"] < speed["fp32_p50_ms"] and speed["min_ms"] < speed["fp32_min_ms"])


@pytest.mark.slow
def test_verify_and_runtime_run_the_onnxruntime_file_as_written(cbam_ort):
    from deploykit import runtime
    from deploykit.verify import VerifyOptions, verify_artifact

    recipe, out, _ = cbam_ort
    run = verify_artifact(recipe, out, VerifyOptions(precision="int8", write=False))
    assert run.passed and run.model_file.endswith(INT8_ORT_MODEL)
    with runtime.load(out / "cbam", "ort-cpu", precision="int8") as session:
        assert session.runner.model == out / "cbam" / INT8_ORT_MODEL
    with pytest.raises(Exception, match=r"no model\.int8\.onnx; make it with `deploykit calibrate cbam --target trt`"):
        verify_artifact(recipe, out, VerifyOptions(backend="ref", precision="int8", write=False))
