"""build-trt on CPU: the checks that need no GPU, against crafted models and every exported recipe.

TensorRT is never imported or mocked here; the GPU half lives in test_trt_gpu.py.
"""

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from deploykit.artifact import Artifact
from deploykit.cli import main
from deploykit.errors import DeployKitError
from deploykit.recipe import find_recipe
from deploykit.store.layout import CALIBRATION_CACHE, FP16_MODEL, INT8_MODEL, MODEL
from deploykit.trt.builder import BuildOptions
from deploykit.trt.calibrator import load_cache
from deploykit.trt.compat import check_dims, check_model
from deploykit.trt.onnx_support import TrtTarget, support_table
from deploykit.trt.precision import plan_precision
from deploykit.trt.preflight import run_preflight
from deploykit.trt.probe import probe, run_probe
from deploykit.trt.runner import TrtRunner
from deploykit.trt.shape_profile import InputProfile, Profile, profile_from_recipe, split_cases, validate_profile
from deploykit.store.ownership import Ownership
from deploykit.store.transaction import transaction
from deploykit.store.writer import Step
from deploykit.trt.sidecar import Sidecar, check_sidecar, read_sidecar, sidecar_path, write_sidecar

from .artifact_cache import artifact_copy, shared_out

TRT10 = TrtTarget("10.15")


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _by_where(problems):
    return {p.where: p for p in problems}


# -- the pinned table -----------------------------------------------------------------------------
def test_table_records_its_source_and_the_documented_restrictions():
    table = support_table()
    assert table["tensorrt"] == "10.15" and table["opset"] == {"min": 9, "max": 24}
    assert "onnx-tensorrt" in table["source"]["url"] and table["source"]["retrieved"]
    ops = table["operators"]
    assert not ops["Unique"]["supported"] and not ops["Col2Im"]["supported"] and not ops["AffineGrid"]["supported"]
    assert "half_pixel_symmetric" not in ops["Resize"]["allowed"]["coordinate_transformation_mode"]
    assert ops["STFT"]["since"] == "10.5"
    assert table["tensorrt_11"]["opset"]["max"] == 25


# -- crafted models: each problem reported with its node name --------------------------------------
def test_unsupported_operator_is_reported_with_its_node():
    model = _model([helper.make_node("Unique", ["x"], ["y"], name="dedupe_ids")], [_f32("x", [8])], [_f32("y", None)])
    problems = check_model(model, TRT10)
    assert [(p.where, p.check) for p in problems] == [("dedupe_ids", "operator")]
    assert "Unique is not supported" in problems[0].message and "replace Unique" in problems[0].fix


def test_half_pixel_symmetric_resize_is_reported_with_its_node():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="head/upsample", mode="linear",
                            coordinate_transformation_mode="half_pixel_symmetric")
    model = _model([node], [_f32("x", [1, 3, 8, 8])], [_f32("y", [1, 3, 16, 16])], [scales], opset=19)
    problems = check_model(model, TRT10)
    assert len(problems) == 1
    p = problems[0]
    assert (p.where, p.check) == ("head/upsample", "resize")
    assert "half_pixel_symmetric" in p.message and "half_pixel" in p.fix


def test_supported_resize_and_plain_graph_are_clean():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["r"], name="up", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Relu", ["r"], ["y"], name="act")]
    model = _model(nodes, [_f32("x", [1, 3, 8, 8])], [_f32("y", [1, 3, 16, 16])], [scales])
    assert check_model(model, TRT10) == []


def test_nonzero_zero_point_is_reported_with_its_node():
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(3, np.int8), "zp")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="act_q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="act_dq")]
    model = _model(nodes, [_f32("x", [4])], [_f32("y", [4])], inits)
    problems = _by_where(check_model(model, TRT10))
    assert set(problems) == {"act_q", "act_dq"}
    assert all(p.check == "qdq" and "zero-point is 3" in p.message for p in problems.values())
    assert "symmetric" in problems["act_q"].fix


def test_int32_bias_dequantize_is_reported_with_its_node():
    inits = [numpy_helper.from_array(np.array([5, -7], np.int32), "bias_q"),
             numpy_helper.from_array(np.array(0.001, np.float32), "bias_s"),
             numpy_helper.from_array(np.array(0, np.int32), "bias_zp")]
    node = helper.make_node("DequantizeLinear", ["bias_q", "bias_s", "bias_zp"], ["bias"], name="conv1.bias_DequantizeLinear")
    model = _model([node], [], [_f32("bias", [2])], inits)
    problems = check_model(model, TRT10)
    assert [(p.where, p.check) for p in problems] == [("conv1.bias_DequantizeLinear", "qdq")]
    assert "INT32 bias" in problems[0].message and "QuantizeBias" in problems[0].fix


def test_uint8_quantization_and_missing_zero_point_default_are_reported():
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s")]
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q_default")  # no zero-point: ONNX says UINT8
    model = _model([node], [_f32("x", [4])], [helper.make_tensor_value_info("q", TensorProto.UINT8, [4])], inits)
    (problem,) = check_model(model, TRT10)
    assert problem.where == "q_default" and "UINT8" in problem.message


def test_pooling_restrictions_are_reported():
    nodes = [
        helper.make_node("MaxPool", ["x"], ["y", "idx"], name="pool_with_indices", kernel_shape=[2, 2]),
        helper.make_node("MaxPool", ["x1"], ["y1"], name="pool_1d", kernel_shape=[2]),
        helper.make_node("AveragePool", ["x"], ["y2"], name="pool_dilated", kernel_shape=[2, 2], dilations=[2, 2]),
    ]
    model = _model(nodes, [_f32("x", [1, 1, 8, 8]), _f32("x1", [1, 1, 8])],
                   [_f32("y", None), helper.make_tensor_value_info("idx", TensorProto.INT64, None), _f32("y1", None),
                    _f32("y2", None)], opset=19)
    problems = _by_where(check_model(model, TRT10))
    assert set(problems) == {"pool_with_indices", "pool_1d", "pool_dilated"}
    assert "Indices" in problems["pool_with_indices"].message
    assert "1D" in problems["pool_1d"].message and "dilations" in problems["pool_dilated"].message


def test_target_versions_opset_and_domains():
    stft = helper.make_node("STFT", ["x", "step"], ["y"], name="spec")
    step = numpy_helper.from_array(np.array(4, np.int64), "step")
    model = _model([stft], [_f32("x", [1, 64, 1])], [_f32("y", None)], [step])
    assert "needs TensorRT >= 10.5" in check_model(model, TrtTarget("10.3"))[0].message
    assert check_model(model, TRT10) == []
    dft = _model([helper.make_node("DFT", ["x"], ["y"], name="fft")], [_f32("x", [1, 8, 1])], [_f32("y", None)])
    assert check_model(dft, TRT10)[0].where == "fft"
    assert check_model(dft, TrtTarget("11.2.1")) == []  # TensorRT 11.2.1 added DFT
    new_opset = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f32("x", [2])], [_f32("y", [2])], opset=25)
    assert [p.check for p in check_model(new_opset, TRT10)] == ["opset"]
    custom = _model([helper.make_node("FusedGelu", ["x"], ["y"], name="gelu", domain="com.microsoft")],
                    [_f32("x", [2])], [_f32("y", [2])])
    custom.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "plugin" in check_model(custom, TRT10)[0].message


@pytest.mark.slow
def test_dry_run_table_lists_problems_with_node_and_fix(tmp_path_factory, tmp_path):
    """A planted unsupported operator in an exported artifact: exit 1, node and fix in the rich table."""
    out = shared_out(tmp_path_factory, "cbam")
    folder = tmp_path / "cbam"
    folder.mkdir()
    for f in Path(out, "cbam").iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    model = onnx.load(str(folder / MODEL))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type, relu.name = "Unique", "planted_unique"
    onnx.save(model, str(folder / MODEL))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].pop(MODEL)  # not an integrity failure: we want the operator check to speak
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["build-trt", "cbam", "--dry-run", "--out", str(tmp_path)], terminal_width=250)
    assert result.exit_code == 1, result.output
    assert "planted_unique" in result.output and "Unique is not supported" in result.output
    assert "replace Unique" in result.output


def test_precision_inputs_missing_are_problems_in_the_dry_run(tmp_path_factory):
    out = shared_out(tmp_path_factory, "se")
    result = CliRunner().invoke(main, ["build-trt", "se", "--int8", "--dry-run", "--json", "--out", str(out)])
    assert result.exit_code == 1
    (problem,) = json.loads(result.output)["checks"][0]["problems"]
    assert problem["check"] == "precision" and "deploykit calibrate se" in problem["fix"]


@pytest.mark.slow  # the full suite: two onnxruntime quantizations (~3 s)
def test_onnxruntime_qdq_models_default_rejected_symmetric_accepted(tmp_path_factory, tmp_path):
    """quantize_static's defaults (asymmetric activations, INT32 bias DQ) are what TensorRT rejects; symmetric INT8
    without bias quantization passes."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    out = shared_out(tmp_path_factory, "eca")
    recipe = find_recipe("eca")  # small, with a biased Conv
    src = Path(out, "eca", MODEL)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([recipe.make_inputs(recipe.case("opt"), seed) for seed in range(4)])

        def get_next(self):
            return next(self.items, None)

    default, symmetric = tmp_path / "default.onnx", tmp_path / "symmetric.onnx"
    quantize_static(str(src), str(default), Reader(), quant_format=QuantFormat.QDQ)
    quantize_static(str(src), str(symmetric), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    bad = check_model(default, TRT10)
    assert any("INT32 bias" in p.message for p in bad)
    assert any("zero-point is" in p.message or "UINT8" in p.message for p in bad)
    assert all(p.where for p in bad)
    assert check_model(symmetric, TRT10) == []


# -- the optimization profile ----------------------------------------------------------------------
def test_profile_for_a_single_input_follows_the_recipe():
    recipe = find_recipe("cbam")
    profile = profile_from_recipe(recipe)
    x = profile.inputs["x"]
    d = recipe.dims
    assert x.min == (d["B"].min, 64, d["H"].min, d["W"].min)
    assert x.opt == (d["B"].opt, 64, d["H"].opt, d["W"].opt)
    assert x.max == (d["B"].max, 64, d["H"].max, d["W"].max)
    assert validate_profile(profile, recipe) == []


@pytest.mark.parametrize("name", ["fpn", "asff", "pmfs"])
def test_profile_keeps_related_inputs_consistent(name):
    recipe = find_recipe(name)
    profile = profile_from_recipe(recipe)
    big, mid, small = (profile.inputs[t.name] for t in recipe.inputs)
    for label in ("min", "opt", "max"):
        s = small.shape(label)
        assert big.shape(label)[2:] == (4 * s[2], 4 * s[3]) and mid.shape(label)[2:] == (2 * s[2], 2 * s[3])
        assert big.shape(label)[0] == mid.shape(label)[0] == s[0]
    assert validate_profile(profile, recipe) == []


def test_profile_validation_reports_order_relations_divisibility_and_static_axes():
    fpn = find_recipe("fpn")
    good = profile_from_recipe(fpn)
    c3, c5 = good.inputs["C3"], good.inputs["C5"]
    broken_relation = Profile({**good.inputs, "C3": InputProfile("C3", (1, 16, 32, 32), c3.opt, c3.max)})
    problems = validate_profile(broken_relation, fpn)
    assert any(p.where == "input C4 axis 2" and "implies H=4, but input C3 axis 2 (4*H) implies H=8" in p.message
               for p in problems)
    unordered = Profile({**good.inputs, "C5": InputProfile("C5", c5.opt, c5.min, c5.max)})
    assert any("min" in p.message and "<= opt" in p.message for p in validate_profile(unordered, fpn))
    c4 = good.inputs["C4"]
    h6 = Profile({"C3": InputProfile("C3", (1, 16, 24, 24), c3.opt, c3.max),  # H=6: related, but not a multiple of 4
                  "C4": InputProfile("C4", (1, 32, 12, 12), c4.opt, c4.max),
                  "C5": InputProfile("C5", (1, 64, 6, 6), c5.opt, c5.max)})
    off_grid = validate_profile(h6, fpn)
    assert off_grid and all("not a multiple of 4" in p.message for p in off_grid)
    danet = find_recipe("danet")
    d = profile_from_recipe(danet).inputs["x"]
    widened = Profile({"x": InputProfile("x", d.min, d.opt, d.max[:2] + (32, 20))})
    assert any("static axis (16)" in p.message for p in validate_profile(widened, danet))


def test_cases_outside_the_profile_are_split_off():
    recipe = find_recipe("cbam")
    profile = profile_from_recipe(recipe)
    narrow = Profile({"x": InputProfile("x", profile.inputs["x"].min, profile.inputs["x"].min, profile.inputs["x"].min)})
    inside, outside = split_cases(recipe.sweep(), recipe, narrow)
    assert [c.label for c in inside] == ["min"] and len(outside) == len(recipe.sweep()) - 1
    assert split_cases(recipe.sweep(), recipe, profile)[1] == []


def test_dims_the_onnx_lacks_and_named_dim_conflicts():
    profile = Profile({"a": InputProfile("a", (1, 8), (2, 16), (4, 32)), "b": InputProfile("b", (1, 4), (2, 8), (4, 16))})
    fixed = _model([helper.make_node("Relu", ["a"], ["y"], name="r")],
                   [_f32("a", ["B", 16]), _f32("b", ["B", "N"])], [_f32("y", None)])
    problems = _by_where(check_dims(fixed, profile))
    assert "needs 8..32" in problems["input a axis 1"].message
    named = _model([helper.make_node("Add", ["a", "b"], ["y"], name="add")],
                   [_f32("a", ["B", "N"]), _f32("b", ["B", "N"])], [_f32("y", None)])
    (conflict,) = check_dims(named, profile)
    assert conflict.where == "dim 'N'" and "equally-named" in conflict.message
    extra = _model([helper.make_node("Relu", ["c"], ["y"], name="r")], [_f32("c", [2])], [_f32("y", None)])
    assert {p.where for p in check_dims(extra, profile)} == {"input c", "input a", "input b"}


# -- version-aware precision ------------------------------------------------------------------------
def test_precision_paths_on_tensorrt_10_and_11():
    t10, t11 = TrtTarget("10.3.0"), TrtTarget("11.2.1")
    everything = {MODEL, FP16_MODEL, INT8_MODEL, CALIBRATION_CACHE}
    assert plan_precision("fp32", t10, {MODEL}).clear_flags == ("TF32",)
    fp16 = plan_precision("fp16", t10, {MODEL})
    assert (fp16.onnx, fp16.flags, fp16.strongly_typed) == (MODEL, ("FP16",), False)
    qdq = plan_precision("int8", t10, everything)
    assert (qdq.onnx, qdq.flags, qdq.path) == (INT8_MODEL, ("INT8",), "trt10-qdq-int8")
    cache = plan_precision("int8", t10, {MODEL, CALIBRATION_CACHE})
    assert (cache.onnx, cache.calibration_cache) == (MODEL, CALIBRATION_CACHE)
    assert plan_precision("int8", t10, everything, int8_source="cache").calibration_cache == CALIBRATION_CACHE
    for precision, onnx_file in (("fp16", FP16_MODEL), ("int8", INT8_MODEL)):
        plan = plan_precision(precision, t11, everything)
        assert (plan.onnx, plan.flags, plan.strongly_typed, plan.calibration_cache) == (onnx_file, (), True, None)
        with pytest.raises(DeployKitError, match=f"no precision builder flags; {precision.upper()} needs {onnx_file}"):
            plan_precision(precision, t11, {MODEL, CALIBRATION_CACHE})
    with pytest.raises(DeployKitError, match="removed the INT8 calibrator"):
        plan_precision("int8", t11, everything, int8_source="cache")
    with pytest.raises(DeployKitError, match="both are missing"):
        plan_precision("int8", t10, {MODEL})


def test_calibration_cache_is_checked_for_the_tensorrt_that_reads_it(tmp_path):
    cache = tmp_path / CALIBRATION_CACHE
    cache.write_text("TRT-100300-MinMaxCalibration\nx: 3c010204\ny: 3d8f5c29\n")
    loaded = load_cache(cache, "10.3.0")
    assert (loaded.version, loaded.algorithm, len(loaded.scales)) == (100300, "MinMaxCalibration", 2)
    with pytest.raises(DeployKitError, match="would ignore it"):
        load_cache(cache, "10.8.0")
    cache.write_text("TRT-100300-Histogram\nx: 3c010204\n")
    with pytest.raises(DeployKitError, match="Histogram cache cannot be served by a cache-only calibrator"):
        load_cache(cache)
    cache.write_text("TRT-100300-EntropyCalibration2\n")
    with pytest.raises(DeployKitError, match="no tensor scales"):
        load_cache(cache)


@pytest.mark.slow
def test_calibrated_artifact_passes_on_tensorrt_10_and_11(tmp_path_factory, tmp_path):
    """`deploykit calibrate`'s Q/DQ, FP16 and cache outputs pass the checks on every precision path."""
    from deploykit.calibration.options import CalibrateOptions
    from deploykit.calibration.pipeline import calibrate_artifact

    out = shared_out(tmp_path_factory, "eca")
    shutil.copytree(Path(out, "eca"), tmp_path / "eca")
    recipe = find_recipe("eca")
    calibrate_artifact(recipe, tmp_path, CalibrateOptions(synthetic=8, trt_version="10.3.0"))
    artifact = Artifact.open(tmp_path / "eca")
    qdq = run_preflight(artifact, recipe, ["fp32", "fp16", "int8"], TrtTarget("10.3.0"))
    assert qdq.clean, [f.problem.line() for f in qdq.findings]
    assert [qdq.plans[p].path for p in ("fp16", "int8")] == ["trt10-flag-fp16", "trt10-qdq-int8"]
    assert qdq.checked_files == [MODEL, INT8_MODEL]
    cache = run_preflight(artifact, recipe, ["int8"], TrtTarget("10.3.0"), int8_source="cache")
    assert cache.clean and cache.plans["int8"].calibration_cache == CALIBRATION_CACHE
    strongly_typed = run_preflight(artifact, recipe, ["fp16", "int8"], TrtTarget("11.2.1"))
    assert strongly_typed.clean and strongly_typed.checked_files == [FP16_MODEL, INT8_MODEL]
    stale = run_preflight(artifact, recipe, ["int8"], TrtTarget("10.8.0"), int8_source="cache")
    assert [(f.file, f.problem.check) for f in stale.findings] == [(CALIBRATION_CACHE, "calibration")]
    assert "--trt-version 10.8.0" in stale.findings[0].problem.fix


# -- the sidecar --------------------------------------------------------------------------------------
def _sidecar_for(plan: Path) -> Sidecar:
    from deploykit.store.files import sha256_file

    return Sidecar(plan=plan.name, plan_sha256=sha256_file(plan), tensorrt="10.3.0.26",
                   gpu={"name": "NVIDIA A10", "compute_capability": "8.6"},
                   profile=Profile({"x": InputProfile("x", (1, 3), (2, 3), (4, 3))}).as_dict(),
                   precision={"precision": "fp16", "path": "trt10-flag-fp16"},
                   onnx={"file": MODEL, "sha256": "0" * 64}, calibration=None)


def _write_sidecar(plan):
    """The sidecar of ``plan`` written as build-trt writes it: in a step over the plan's folder."""
    with transaction(plan.parent) as txn:
        return plan.parent / write_sidecar(Step(txn, Ownership(), force=False), plan.name, _sidecar_for(plan))


def test_sidecar_round_trip_and_refusals(tmp_path):
    plan = tmp_path / "model.fp16.plan"
    plan.write_bytes(b"\x00serialized-engine-bytes")
    written = _write_sidecar(plan)
    assert written == sidecar_path(plan) == tmp_path / "model.fp16.plan.json"
    back = read_sidecar(plan)
    assert back.tensorrt == "10.3.0.26" and back.profile_obj.inputs["x"].max == (4, 3) and back.created
    check_sidecar(back, plan, "10.3.0.26", "NVIDIA A10", "8.6")  # same TensorRT and GPU: accepted
    with pytest.raises(DeployKitError, match=r"built with TensorRT 10\.3\.0\.26, this machine has TensorRT 10\.4\.0"):
        check_sidecar(back, plan, "10.4.0", "NVIDIA A10", "8.6")
    with pytest.raises(DeployKitError, match=r"built for NVIDIA A10 \(compute capability 8\.6\), this GPU is NVIDIA L4 \(8\.9\)"):
        check_sidecar(back, plan, "10.3.0.26", "NVIDIA L4", "8.9")
    plan.write_bytes(b"something else")
    with pytest.raises(DeployKitError, match="does not match the sha256 in its sidecar"):
        check_sidecar(back, plan, "10.3.0.26", "NVIDIA A10", "8.6")
    sidecar_path(plan).unlink()
    with pytest.raises(DeployKitError, match="has no sidecar"):
        read_sidecar(plan)


# -- no GPU, no TensorRT ------------------------------------------------------------------------------
needs_no_trt = pytest.mark.skipif(probe().tensorrt_version is not None, reason="TensorRT is installed on this machine")


@needs_no_trt
def test_probe_says_what_is_missing_in_one_line():
    result = probe()
    assert not result.ok
    assert result.missing.startswith("needs TensorRT and an NVIDIA GPU: tensorrt is not importable")
    assert "\n" not in result.missing


def test_probe_survives_a_crashing_runtime(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = run_probe(str(fake))
    assert not result.ok and "SIGSEGV while importing tensorrt" in result.missing


@needs_no_trt
def test_build_without_tensorrt_runs_checks_then_exits_3_with_one_line(tmp_path_factory):
    out = shared_out(tmp_path_factory, "cbam")
    result = CliRunner().invoke(main, ["build-trt", "cbam", "--out", str(out)], terminal_width=200)
    assert result.exit_code == 3
    assert "CPU checks against TensorRT 10.15" in result.stdout and "clean" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: needs TensorRT and an NVIDIA GPU: tensorrt is not importable")


def test_build_engines_reports_each_recipes_checks_and_errors_and_builds_nothing_then(tmp_path_factory, tmp_path):
    """The library call under build-trt: a recipe without an artifact is an error of the run, the others are checked,
    and with any problem nothing is built, whatever the machine."""
    from deploykit.trt.build import BuildRun, build_engines

    artifact_copy(tmp_path_factory, "se", tmp_path)  # cbam is not exported in tmp_path
    recipes = [find_recipe("se"), find_recipe("cbam")]
    seen = []
    run = build_engines(recipes, tmp_path, ["fp32", "int8"], on_checked=seen.append)
    assert isinstance(run, BuildRun) and seen == [run]  # told once, after the checks
    assert [e["name"] for e in run.errors] == ["cbam"] and "deploykit export cbam" in run.errors[0]["error"]
    (check,) = run.checks
    assert check.name == "se" and list(check.plans) == ["fp32"]  # no INT8 model: a problem, not a plan
    assert [(f.name, f.problem.check) for f in run.findings] == [("se", "precision")]
    assert run.builds is None and not run.buildable and not run.passed and run.exit_code == 1
    report = run.to_dict()
    assert list(report) == ["tensorrt_target", "tensorrt_assumed", "precisions", "machine", "checks", "errors"]
    assert report["precisions"] == ["fp32", "int8"] and report["checks"][0]["problems"][0]["check"] == "precision"

    clean = build_engines(recipes[:1], tmp_path, dry_run=True)
    assert clean.precisions == ["fp32"] and clean.checks[0].clean and clean.passed and clean.exit_code == 0
    with pytest.raises(DeployKitError, match="--opt-level must be 0..5"):
        build_engines(recipes[:1], tmp_path, options=BuildOptions(opt_level=9))
    with pytest.raises(DeployKitError, match="no artifact in"):  # one recipe: its error is raised
        build_engines(recipes[1:], tmp_path, dry_run=True)


@pytest.mark.skipif(probe().ok, reason="this machine can build TensorRT engines")
def test_build_engines_without_a_gpu_checks_and_says_what_is_missing(tmp_path_factory, tmp_path):
    from deploykit.trt.build import EXIT_NO_TENSORRT, build_engines

    artifact_copy(tmp_path_factory, "se", tmp_path)
    run = build_engines([find_recipe("se")], tmp_path)
    assert run.checks[0].clean and not run.findings and not run.errors
    assert run.builds is None and not run.buildable and run.exit_code == EXIT_NO_TENSORRT
    assert run.machine.missing.startswith("needs TensorRT and an NVIDIA GPU")
    assert run.to_dict()["machine"]["ok"] is False and "builds" not in run.to_dict()


@needs_no_trt
def test_trt_runner_refuses_cleanly_without_a_gpu(tmp_path):
    plan = tmp_path / "model.fp32.plan"
    plan.write_bytes(b"engine")
    _write_sidecar(plan)
    with pytest.raises(DeployKitError, match="needs TensorRT and an NVIDIA GPU"):
        with TrtRunner(plan):
            pass


def test_cli_rejects_bad_options(tmp_path_factory):
    out = shared_out(tmp_path_factory, "cbam")
    result = CliRunner().invoke(main, ["build-trt", "cbam", "--opt-level", "9", "--out", str(out)])
    assert result.exit_code == 2 and "--opt-level must be 0..5" in result.output
    result = CliRunner().invoke(main, ["build-trt", "cbam", "--trt-version", "8.6", "--dry-run", "--out", str(out)])
    assert result.exit_code == 2 and "TensorRT 10 and 11" in result.output


def test_library_never_imports_tensorrt():
    import sys

    import deploykit.cli.build_trt_cmd  # noqa: F401
    import deploykit.trt.builder  # noqa: F401
    import deploykit.trt.device  # noqa: F401
    import deploykit.trt.parity  # noqa: F401
    assert "tensorrt" not in sys.modules
