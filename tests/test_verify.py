"""deploykit verify: the parity harness over the whole shape range, and its diagnosis."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from deploykit.runners.torch_runner import FlatIO
from deploykit.cli import main
from deploykit.parity.metrics import compare_output, error_stats
from deploykit.errors import DeployKitError
from deploykit.export import export_onnx
from deploykit.export.exporters import example_case, export_dynamo, export_torchscript
from deploykit.recipe import find_recipe, load_recipe
from deploykit.runners.ort_runner import OrtRunner
from deploykit.runners.ref_runner import ReferenceRunner
from deploykit.verify import VerifyOptions, verify_artifact, verify_onnx
from deploykit.export.weights import seeded_model

from .conftest import RECIPES


def _plant(tmp_path, name, exporter, dynamic=True):
    """An ONNX made outside deploykit's safeguards, plus the checkpoint it came from."""
    recipe = find_recipe(name, RECIPES)
    model = seeded_model(recipe)
    checkpoint = tmp_path / f"{name}.pt"
    torch.save(model.state_dict(), checkpoint)
    example = recipe.make_inputs(example_case(recipe))
    path = tmp_path / f"{name}-{exporter}.onnx"
    exporter(FlatIO(model, recipe.call), [torch.from_numpy(example[t.name]) for t in recipe.inputs], recipe, 17,
             dynamic, path, [])
    return recipe, path, checkpoint


@pytest.mark.slow
def test_baked_pooling_passes_at_export_shape_and_is_caught_elsewhere(tmp_path):
    recipe, path, checkpoint = _plant(tmp_path, "msaf", export_dynamo)  # no rewrites: the pool is baked
    run = verify_onnx(path, recipe, checkpoint=checkpoint)
    results = {c.label: c.passed for c in run.cases}
    assert results["opt"] is True and not run.passed
    assert sum(not ok for ok in results.values()) >= 3
    assert any("shape-dependent export bug" in note for note in run.diagnosis)
    assert any("'context1.0' (AdaptiveAvgPool2d)" in note for note in run.diagnosis)
    report = (tmp_path / f"{path.stem}.verify" / "report.md").read_text()
    assert "FAILED" in report and "shape-dependent export bug" in report


def test_static_axis_fed_an_allowed_shape_is_reported_with_the_axis(tmp_path):
    recipe, path, checkpoint = _plant(tmp_path, "cbam", export_torchscript, dynamic=False)
    run = verify_onnx(path, recipe, checkpoint=checkpoint)
    assert not run.passed
    errors = [c.error for c in run.cases if c.error]
    assert errors and "axis 2 is" in errors[-1] and "static axes" in errors[-1]
    assert any("input 'x' axis 2 (H) is fixed at 32" in note for note in run.diagnosis)


@pytest.mark.slow
def test_cli_exit_codes_pass_fail_and_user_error(tmp_path):
    export_onnx(find_recipe("se", RECIPES), tmp_path)
    ok = CliRunner().invoke(main, ["verify", "se", "--out", str(tmp_path), "--shape", "B=3,H=37,W=53"])
    assert ok.exit_code == 0, ok.output
    assert "user-1" in ok.output
    recipe, path, checkpoint = _plant(tmp_path, "msaf", export_dynamo)
    bad = CliRunner().invoke(main, ["verify", "--onnx", str(path), "--module", "deploykit.zoo.msaf:MSAF",
                                    "--recipe", str(_as_user_recipe(tmp_path, "msaf", "deploykit.zoo.msaf:MSAF")),
                                    "--checkpoint", str(checkpoint), "--json"])
    assert bad.exit_code == 1, bad.output
    assert json.loads(bad.output)["passed"] is False
    missing = CliRunner().invoke(main, ["verify", "cbam", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "no artifact" in missing.output


def _as_user_recipe(tmp_path, name, factory):
    text = (RECIPES / f"{name}.toml").read_text().replace(f'module = "{name}"', f'factory = "{factory}"')
    path = tmp_path / f"user_{name}.toml"
    path.write_text(text)
    return path


def test_manifest_that_does_not_match_the_recipe_is_refused(tmp_path):
    export_onnx(find_recipe("se", RECIPES), tmp_path / "art")
    changed = tmp_path / "recipes"
    changed.mkdir()
    (changed / "se.toml").write_text((RECIPES / "se.toml").read_text().replace("max = 64", "max = 48", 1))
    with pytest.raises(DeployKitError, match="exported from a different recipe"):
        verify_artifact(find_recipe("se", changed), tmp_path / "art")


def test_bad_shape_option_and_out_of_range_shape(tmp_path):
    export_onnx(find_recipe("se", RECIPES), tmp_path)
    result = CliRunner().invoke(main, ["verify", "se", "--out", str(tmp_path), "--shape", "Q=3"])
    assert result.exit_code == 2 and "unknown symbol 'Q'" in result.output
    result = CliRunner().invoke(main, ["verify", "se", "--out", str(tmp_path), "--shape", "H=999"])
    assert result.exit_code == 2 and "outside the recipe's range" in result.output


def test_wrong_input_names_are_one_line(tmp_path):
    result = export_onnx(find_recipe("se", RECIPES), tmp_path)
    with OrtRunner(result.path) as runner, pytest.raises(DeployKitError, match=r"missing \['x'\], unexpected \['image'\]"):
        runner.infer({"image": np.zeros((1, 64, 8, 8), np.float32)})


def test_reference_evaluator_agrees_with_onnxruntime(tmp_path):
    result = export_onnx(find_recipe("se", RECIPES), tmp_path)
    feed = {"x": np.random.default_rng(0).standard_normal((2, 64, 9, 13)).astype(np.float32)}
    with OrtRunner(result.path) as ort_runner, ReferenceRunner(result.path) as ref_runner:
        a, b = ort_runner.infer(feed)["y"], ref_runner.infer(feed)["y"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    run = verify_artifact(find_recipe("se", RECIPES), tmp_path, VerifyOptions(backend="ref", write=False))
    assert run.passed and 1 <= len(run.cases) <= 3


def test_verify_options_are_checked_before_the_artifact_is_read(tmp_path):
    options = VerifyOptions(extra_shapes=[{"H": 37}], samples=2, seed=3)
    assert options.extra_shapes == ({"H": 37},) and options.backend == "ort-cpu" and options.write
    options.check()
    for bad, message in ((VerifyOptions(backend="torch"), "--backend must be one of ort-cpu, ort-cuda, ort-trt, ref, trt"),
                         (VerifyOptions(precision="int4"), "precision must be one of fp32, fp16, int8, got 'int4'"),
                         (VerifyOptions(samples=-1), "--samples must be 0 or more")):
        with pytest.raises(DeployKitError, match=message):  # the folder holds no artifact: the options speak first
            verify_artifact(find_recipe("se", RECIPES), tmp_path, bad)
    export_onnx(find_recipe("se", RECIPES), tmp_path)
    run = verify_artifact(find_recipe("se", RECIPES), tmp_path, VerifyOptions(extra_shapes=[{"H": 37, "W": 9}],
                                                                             seed=3, write=False))
    assert run.passed and run.seed == 3 and {"B": 2, "H": 37, "W": 9} in [c.shape for c in run.cases]
    assert not (tmp_path / "se" / "verify.json").exists()  # write=False


def test_metrics_against_hand_computed_values():
    actual, expected = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    stats = error_stats(actual, expected)
    assert stats["max_abs"] == 1.0
    assert stats["mean_abs"] == pytest.approx(1 / 3)
    assert stats["max_rel"] == pytest.approx(0.25)
    assert stats["cosine"] == pytest.approx(17 / math.sqrt(14 * 21))
    assert stats["snr_db"] == pytest.approx(10 * math.log10(21 / 1))
    assert stats["p99_abs"] == pytest.approx(np.percentile([0, 0, 1], 99))
    assert error_stats(expected, expected)["snr_db"] == float("inf")


def test_tolerance_selection_per_precision():
    recipe = find_recipe("se", RECIPES)
    fp32, fp16, int8 = (recipe.tolerance(p) for p in ("fp32", "fp16", "int8"))
    assert fp32.atol < fp16.atol and fp16.atol > 1e-5  # a 1e-5 fp16 default is the known false-failure trap
    assert int8.atol is None and int8.cosine_min < fp16.cosine_min
    rng = np.random.default_rng(0)
    expected = rng.standard_normal(1000).astype(np.float32)
    half = expected.astype(np.float16).astype(np.float32)  # the rounding an fp16 model really makes
    assert compare_output("y", half, expected, fp16).passed
    assert not compare_output("y", half, expected, fp32).passed


def test_recipe_tolerance_override(tmp_path):
    text = (RECIPES / "se.toml").read_text() + "\n[tolerance.fp16]\natol = 0.5\ncosine_min = 0.9\n"
    path = tmp_path / "se.toml"
    path.write_text(text)
    tol = load_recipe(path).tolerance("fp16")
    assert tol.atol == 0.5 and tol.cosine_min == 0.9
