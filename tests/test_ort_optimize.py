"""optimize_for_ort (graph changes at export): the same function, fewer nodes."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from deploykit.export import ExportOptions, export_onnx
from deploykit.export.optimize import optimize_for_ort
from deploykit.recipe import find_recipe

from .conftest import RECIPES


def _session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name, folded", [
    ("sdpa_simplified", "Reshape"),      # Shape/Slice/Concat chains -> constant shapes with 0 / -1
    pytest.param("msaf", "floor division", marks=pytest.mark.slow),  # floor division on shape values -> Div (~6 s)
])
def test_optimized_model_is_the_same_function_with_fewer_nodes(tmp_path, name, folded):
    recipe = find_recipe(name, RECIPES)
    result = export_onnx(recipe, tmp_path, ExportOptions(optimize=False))
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
