"""deploykit export: every recipe exports dynamic and checked; wrong models are refused, never written."""

import onnx
import pytest
from click.testing import CliRunner

from deploykit.artifact import Artifact
from deploykit.cli import main
from deploykit.errors import DeployKitError, ExportRefused, UserCodeError
from deploykit.export import ExportOptions, export_onnx
from deploykit.export.checks import check_dynamic_axes
from deploykit.recipe import find_recipe, load_recipe
from deploykit.store.files import sha256_file
from deploykit.store.layout import MANIFEST, MODEL

from .conftest import RECIPES
from .user_modules import TIME_MIX_RECIPE, USER_RECIPE


def test_pooling_modules_record_their_rewrites():
    from deploykit.export.rewrites import apply_rewrites

    def rewrites(name):
        return [r.description for r in apply_rewrites(find_recipe(name, RECIPES).build())[1]]

    assert any("bin-averaging" in r for r in rewrites("msaf"))
    assert any("axis pooling" in r for r in rewrites("coordatt"))


@pytest.mark.slow
def test_export_is_byte_for_byte_reproducible(tmp_path):
    recipe = find_recipe("cbam", RECIPES)
    first = export_onnx(recipe, tmp_path / "a")
    second = export_onnx(recipe, tmp_path / "b")
    assert sha256_file(first.path) == sha256_file(second.path)


@pytest.mark.slow
def test_baked_adaptive_pooling_is_refused_not_written(tmp_path):
    recipe = find_recipe("msaf", RECIPES)
    with pytest.raises(ExportRefused, match="shape-dependent"):
        export_onnx(recipe, tmp_path, ExportOptions(exporter="dynamo", rewrites=False))
    assert not (tmp_path / "msaf" / MODEL).exists()
    assert not (tmp_path / "msaf" / MANIFEST).exists()


def test_torchscript_without_rewrites_refuses_adaptive_pooling(tmp_path):
    with pytest.raises(ExportRefused, match="torchscript"):
        export_onnx(find_recipe("coordatt", RECIPES), tmp_path, ExportOptions(exporter="torchscript", rewrites=False))


def test_dynamic_axis_that_comes_out_static_is_refused_with_the_axis(tmp_path):
    recipe = load_recipe(_write(tmp_path, "time_mix.toml", TIME_MIX_RECIPE))
    # dynamo would write T as 12 (its Linear fixes it): the range analysis refuses before it does
    with pytest.raises(ExportRefused, match=r"specialised to its example shape: it holds only where `T == 12` "
                                            r"\(recorded inside torch.*a Linear's weights over the axis.*\), false at T=\d+ \(declared\)"):
        export_onnx(recipe, tmp_path / "out", ExportOptions(exporter="dynamo"))
    # and an ONNX whose declared-dynamic axis is a number is refused by the dims check, whoever wrote it
    static = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["B", 4, 12])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["B", 4, 12])]))
    with pytest.raises(ExportRefused, match=r"axis 2 \(T\) was declared dynamic but came out static \(12\)"):
        check_dynamic_axes(static, recipe)
    # TorchScript keeps T symbolic, but the PyTorch module itself cannot run at another T: the user's error, one line
    with pytest.raises(UserCodeError, match=r"the PyTorch module at B=\d+ T=\d+ raised RuntimeError: .* at .*user_modules\.py:\d+"):
        export_onnx(recipe, tmp_path / "out", ExportOptions(exporter="torchscript"))
    assert not (tmp_path / "out" / "time_mix" / MODEL).exists()


def test_user_module_path(tmp_path):
    recipe_path = _write(tmp_path, "gate.toml", USER_RECIPE)
    result = CliRunner().invoke(main, ["export", "--module", "tests.user_modules:make_gate", "--recipe",
                                       str(recipe_path), "--out", str(tmp_path / "art"), "--json"])
    assert result.exit_code == 0, result.output
    artifact = Artifact.open(tmp_path / "art" / "gate")
    assert artifact.manifest["module"] == "tests.user_modules:make_gate"
    check_dynamic_axes(onnx.load(str(artifact.model_path)), load_recipe(recipe_path))


def test_foreign_file_is_not_overwritten_without_force(tmp_path):
    folder = tmp_path / "cbam"
    folder.mkdir()
    (folder / MODEL).write_bytes(b"the user's own model")
    with pytest.raises(DeployKitError, match="was not written by deploykit; pass --force"):
        export_onnx(find_recipe("cbam", RECIPES), tmp_path)
    assert (folder / MODEL).read_bytes() == b"the user's own model"
    export_onnx(find_recipe("cbam", RECIPES), tmp_path, ExportOptions(force=True))
    Artifact.open(folder).check_files()


def test_export_options_are_checked_before_anything_is_written(tmp_path):
    recipe = find_recipe("se", RECIPES)
    assert ExportOptions().opset_for(recipe) == recipe.opset == 17 and ExportOptions(opset=13).opset_for(recipe) == 13
    ExportOptions(opset=23, exporter="dynamo").check(recipe)
    with pytest.raises(DeployKitError, match=r"^--exporter must be one of auto, torchscript, dynamo, got 'onnx'$"):
        ExportOptions(exporter="onnx").check()
    with pytest.raises(DeployKitError, match=r"^opset 12 is not supported \(use 13..23\)$"):
        ExportOptions(opset=12).check()
    with pytest.raises(DeployKitError, match=r"^opset 24 is not supported \(use 13..23; the recipe's default is 17\)$"):
        export_onnx(recipe, tmp_path, ExportOptions(opset=24))
    assert not (tmp_path / "se").exists()
    with pytest.raises(AttributeError):  # frozen: one value for every recipe of a run
        ExportOptions().opset = 18


@pytest.mark.slow
def test_reexport_over_own_artifact_needs_no_force(tmp_path):
    recipe = find_recipe("se", RECIPES)
    export_onnx(recipe, tmp_path)
    export_onnx(recipe, tmp_path)
    (tmp_path / "se" / MODEL).write_bytes(b"edited")
    with pytest.raises(DeployKitError, match="modified since deploykit wrote it"):
        export_onnx(recipe, tmp_path)


@pytest.mark.parametrize("args,message", [
    (["export", "cbma"], "unknown recipe 'cbma'"),
    (["export", "cbam", "--opset", "5"], "opset 5 is not supported"),
    (["export", "--module", "tests.user_modules:nope", "--recipe", "{missing}"], "has no callable 'nope'"),
    (["export", "--module", "no_such_pkg.mod:f", "--recipe", "{bad_factory}"], "cannot import 'no_such_pkg.mod'"),
    (["export", "cbam", "--out", "{file}/sub"], "cannot create output folder"),
    (["export"], "name at least one recipe"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    gate = _write(tmp_path, "gate.toml", USER_RECIPE)
    bad_factory = _write(tmp_path, "bad.toml", USER_RECIPE.replace("tests.user_modules:make_gate", "no_such_pkg.mod:f"))
    missing = _write(tmp_path, "missing.toml", USER_RECIPE.replace("make_gate", "nope"))
    args = [a.format(file=blocker, gate=gate, bad_factory=bad_factory, missing=missing) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path
