"""ort_session (runners/ort_runner.py) is the one constructor of an onnxruntime session, and each caller's options
reach the session: threads, graph optimization level, profiling, the optimized-graph file."""

import ast
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from deploykit.bench.op_profile import profile_ort
from deploykit.calibration.fp16 import ort_cpu_kernels, tensor_shapes
from deploykit.runners.ort_runner import OrtRunner, ort_session

from .conftest import REPO


def _model() -> onnx.ModelProto:
    """y = relu(x + 1) * 2, with a symbolic batch."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [helper.make_node("Add", ["x", "one"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "two"], ["y"], name="mul")]
    graph = helper.make_graph(nodes, "g", [x], [y], [one, two])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_the_only_inference_session_in_the_package_is_ort_session():
    sites = []
    for path in sorted((REPO / "deploykit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            called = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(called, "attr", getattr(called, "id", None)) == "InferenceSession":
                sites.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert len(sites) == 1 and sites[0].startswith("deploykit/runners/ort_runner.py:"), sites


def test_the_callers_options_reach_the_session(tmp_path):
    model = _model()
    feed = {"x": np.array([[-2, -1, 0, 1]], np.float32)}
    session = ort_session(model.SerializeToString(), threads=2, optimization="disable", spinning=False)
    options = session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.graph_optimization_level.name == "ORT_DISABLE_ALL"
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    np.testing.assert_array_equal(session.run(None, feed)[0], [[0, 0, 2, 4]])

    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    profiled = ort_session(path, profile_prefix=str(tmp_path / "prof"), optimized_path=tmp_path / "placed.onnx")
    profiled.run(None, feed)
    trace = json.loads(Path(profiled.end_profiling()).read_text())
    assert any(e.get("cat") == "Node" for e in trace)
    assert onnx.load(str(tmp_path / "placed.onnx")).graph.node  # the graph onnxruntime runs, written


def test_every_caller_runs_through_it(tmp_path):
    model = _model()
    feed = {"x": np.ones((3, 4), np.float32)}
    assert tensor_shapes(model, feed)["a"] == (3, 4)  # calibration/fp16.py: every intermediate's shape
    assert ort_cpu_kernels(model) is not None  # calibration/fp16.py: the graph onnxruntime places
    assert {row.op_type for row in profile_ort(model.SerializeToString(), feed, runs=3)["ops"]} >= {"Relu"}
    with OrtRunner(model.SerializeToString(), threads=1) as runner:
        np.testing.assert_array_equal(runner.infer(feed)["y"], np.full((3, 4), 4, np.float32))
