"""Every recipe of the zoo, exported once (the session's ``exported`` fixture): export's checks, verify over the
sweep, and build-trt's CPU checks. In one file so that one test worker exports the zoo once (~55 s), not each
worker that runs one of these tests."""

import json

import onnx
import pytest
from click.testing import CliRunner

from deploykit.artifact import Artifact
from deploykit.cli import main
from deploykit.export.checks import check_dynamic_axes
from deploykit.recipe import find_recipe, load_all
from deploykit.store.layout import MODEL
from deploykit.verify import verify_artifact

from .conftest import RECIPES, recipe_names


@pytest.mark.slow
@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_exports_dynamic_checked_and_simplified(exported, name):
    out, results = exported
    result = results[name]
    recipe = find_recipe(name, RECIPES)
    artifact = Artifact.open(out / name)
    artifact.check_files()
    model = onnx.load(str(artifact.model_path))
    check_dynamic_axes(model, recipe)  # raises if any declared dynamic axis is static
    assert result.opset == 17 and not result.opset_note
    assert result.simplifier in ("onnxsim", "onnxslim")
    assert result.nodes[result.simplifier] <= result.nodes["raw"]
    manifest = artifact.manifest
    assert manifest["recipe"]["sha256"] == recipe.sha256
    assert {"torch", "onnx", "onnxruntime", "onnxsim", "onnxslim"} <= set(manifest["versions"])
    assert len(manifest["checks"]["parity_cases"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", recipe_names())
def test_every_exported_recipe_verifies_at_five_or_more_shapes(exported, name):
    out, _ = exported
    run = verify_artifact(find_recipe(name, RECIPES), out)
    assert run.passed, run.to_dict()
    assert len(run.cases) >= 5 or not find_recipe(name, RECIPES).dynamic_symbols
    assert run.runner["providers_used"] == ["CPUExecutionProvider"]
    data = json.loads((out / name / "verify.json").read_text())
    assert data["runs"]["ort-cpu/fp32"]["passed"] is True
    report = (out / name / "report.md").read_text()
    assert "PASSED" in report and "max abs" in report
    for plot in data["runs"]["ort-cpu/fp32"]["plots"].values():
        assert (out / name / plot).read_bytes()[:4] == b"\x89PNG"


# -- every zoo recipe and composite passes the dry run ----------------------------------------------
@pytest.mark.slow
def test_every_exported_recipe_passes_the_checks(exported):
    out, _ = exported
    names = [r.name for r in load_all()]
    assert "composite" in names
    result = CliRunner().invoke(main, ["build-trt", "--all", "--dry-run", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert sorted(c["name"] for c in report["checks"]) == sorted(names)
    for check in report["checks"]:
        assert check["clean"], (check["name"], check["problems"])
        assert check["checked_files"] == [MODEL]
