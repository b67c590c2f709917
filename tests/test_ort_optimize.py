"""optimize_for_ort (graph changes at export) and prepare_qdq_for_ort (Q/DQ models at load): same results."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploykit.export import export_onnx
from deploykit.export.optimize import optimize_for_ort
from deploykit.recipe import find_recipe
from deploykit.runners.ort_qdq import prepare_qdq_for_ort

from .conftest import RECIPES


def _session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name, folded", [
    ("sdpa_simplified", "Reshape"),      # Shape/Slice/Concat chains -> constant shapes with 0 / -1
    ("msaf", "floor division"),          # floor-division emulation on shape values -> Div
])
def test_optimized_model_is_the_same_function_with_fewer_nodes(tmp_path, name, folded):
    recipe = find_recipe(name, RECIPES)
    result = export_onnx(recipe, tmp_path, optimize=False)
    original = onnx.load(str(result.path))
    optimized, notes = optimize_for_ort(original, recipe)
    assert any(n.startswith(folded) for n in notes), notes
    assert len(optimized.graph.node) < len(original.graph.node)
    assert {n.domain for n in optimized.graph.node} <= {"", "ai.onnx"}  # standard ONNX only (TensorRT parses it)
    onnx.checker.check_model(optimized, full_check=True)
    before, after = _session(original), _session(optimized)
    for case in recipe.sweep():  # every swept shape, including off-grid ones
        feed = recipe.make_inputs(case)
        for a, b in zip(before.run(None, feed), after.run(None, feed)):
            np.testing.assert_array_equal(a, b)


def test_export_records_the_optimization(tmp_path):
    result = export_onnx(find_recipe("sdpa_simplified", RECIPES), tmp_path)
    record = result.manifest["ort_optimization"]
    assert record["applied"] is True and record["notes"]
    assert result.nodes["final"] < result.nodes[result.simplifier] <= result.nodes["raw"]


def test_nothing_to_do_returns_the_model_unchanged():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    same, notes = optimize_for_ort(model)
    assert same is model and notes == []


def _qdq_silu_model(bias: bool = True):
    """x -> Q/DQ -> Conv(DQ(INT8 weight), float bias) -> Q/DQ -> x * sigmoid(x), INT8 zero-point 0 throughout:
    TensorRT's style, with the quantized Conv output read twice (as in every SiLU of the composite)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "s_x"), numpy_helper.from_array(np.array(0, np.int8), "z"),
             numpy_helper.from_array(rng.integers(-127, 128, size=(8, 4, 3, 3)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.array(0.01, np.float32), "s_w"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "bias"),
             numpy_helper.from_array(np.array(0.05, np.float32), "s_y"),
             numpy_helper.from_array(np.array(1 / 127, np.float32), "s_s")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_x", "z"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "s_x", "z"], ["x_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "s_w", "z"], ["w_dq"]),
             helper.make_node("Conv", ["x_dq", "w_dq"] + ["bias"] * bias, ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["conv", "s_y", "z"], ["c_q"]),
             helper.make_node("DequantizeLinear", ["c_q", "s_y", "z"], ["c_dq"]),
             helper.make_node("Sigmoid", ["c_dq"], ["sig"]),
             helper.make_node("QuantizeLinear", ["sig", "s_s", "z"], ["sig_q"]),
             helper.make_node("DequantizeLinear", ["sig_q", "s_s", "z"], ["sig_dq"]),
             helper.make_node("Mul", ["c_dq", "sig_dq"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _kernels(model: onnx.ModelProto, tmp_path) -> set[str]:
    """The op types of onnxruntime's optimized graph (what its CPU kernels will run)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return {n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}


def _unoptimized(model: onnx.ModelProto):
    """onnxruntime running the graph as written (no fusion): the model's own semantics."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_qdq_model_is_prepared_for_onnxruntime_kernels(tmp_path):
    model = _qdq_silu_model()
    prepared, notes = prepare_qdq_for_ort(model)
    onnx.checker.check_model(prepared, full_check=True)
    assert notes == ["6 activation Q/DQ nodes INT8 -> UINT8 (zero-point + 128, same values)"]
    weights = [i for i in prepared.graph.initializer if i.name == "w_q"]
    assert weights and weights[0].data_type == TensorProto.INT8  # weights stay INT8 (U8S8)
    assert "QLinearConv" not in _kernels(model, tmp_path)  # as written for TensorRT: FP32 Conv + DQ per run
    assert "QLinearConv" in _kernels(prepared, tmp_path)
    # the same model: identical outputs when onnxruntime runs both graphs as written, saturation included
    feed = {"x": np.random.default_rng(1).uniform(-4, 4, (1, 4, 8, 8)).astype(np.float32)}
    np.testing.assert_array_equal(_unoptimized(model).run(None, feed)[0], _unoptimized(prepared).run(None, feed)[0])
    # fused INT8 kernels round like the FP32 path up to one output step (s_y = 0.05) on a few values
    fused, reference = _session(prepared).run(None, feed)[0], _unoptimized(model).run(None, feed)[0]
    assert np.abs(fused - reference).max() <= 0.05 * 1.01 and np.mean(fused == reference) > 0.95


def test_a_model_without_int8_activations_is_returned_unchanged():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    same, notes = prepare_qdq_for_ort(model)
    assert same is model and notes == []
