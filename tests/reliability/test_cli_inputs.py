"""Bad-input suite, CLI class (issue 13): arguments a careless or hostile user types.

Names that become paths (``package --model-name ../../escaped``, an absolute name, ``export ../x``) must not
write outside the target folder; usage errors are one line like every other error. Each case asserts exit 2,
one line on stderr, no traceback, and that nothing under the test's folder changed but what the command owns.
"""

import pytest

from ..artifact_cache import artifact_copy
from .checks import assert_one_line_error, cli, tree


@pytest.fixture
def out(tmp_path_factory, tmp_path):
    """A private copy of the shared ``se`` artifact in ``tmp_path/out``, and the whole test folder's files."""
    artifact_copy(tmp_path_factory, "se", tmp_path / "out")
    return tmp_path / "out"


@pytest.mark.parametrize("model_name, expected", [
    ("../../escaped", "--model-name '../../escaped' is not a valid name"),
    ("../sibling", "is not a valid name"),
    ("/tmp/absolute", "is not a valid name"),
    ("a/b", "is not a valid name"),
    ("..", "is not a valid name"),
    (".hidden", "is not a valid name"),
    ("-rf", "is not a valid name"),
    ("name\nsecond line", "is not a valid name"),
    ("se\n", "is not a valid name"),
])
@pytest.mark.parametrize("target", ["--triton", "--kserve"])
def test_a_model_name_that_leaves_the_repository_is_refused(model_name, expected, target, out, tmp_path):
    before = tree(tmp_path)
    line = assert_one_line_error(cli("package", "se", target, tmp_path / "repo", "--model-name", model_name,
                                     "--out", out), expected)
    assert "\n" not in line
    assert tree(tmp_path) == before, "nothing may be written anywhere"
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


@pytest.mark.parametrize("command", ["export", "verify", "calibrate", "bench", "package"])
@pytest.mark.parametrize("name", ["../se", "/etc/passwd", "se/../../se"])
def test_a_recipe_name_that_is_a_path_is_an_unknown_recipe(command, name, out, tmp_path):
    before = tree(tmp_path)
    args = {"package": ["--triton", tmp_path / "repo"], "calibrate": ["--synthetic", "2"]}.get(command, [])
    expected = "no artifact in" if command == "package" else "unknown recipe"
    assert_one_line_error(cli(command, name, *args, "--out", out), expected)
    assert tree(tmp_path) == before


USAGE = {
    "unknown_option": (["export", "se", "--bogus"], "No such option '--bogus'"),
    "unknown_command": (["exprot", "se"], "No such command 'exprot'"),
    "bad_choice": (["verify", "se", "--precision", "int9"], "Invalid value for '--precision'"),
    "bad_int": (["export", "se", "--opset", "seventeen"], "'seventeen' is not a valid integer"),
    "out_of_range": (["calibrate", "se", "--synthetic", "0"], "Invalid value for '--synthetic'"),
    "missing_argument": (["package"], "Missing argument 'NAME'"),
    "missing_value": (["export", "se", "--out", "{folder}", "--opset"], "Option '--opset' requires an argument"),
    "out_is_a_file": (["export", "se", "--out", "{file}"], "is a file"),
    "checkpoint_is_a_folder": (["export", "se", "--checkpoint", "{folder}"], "is a directory"),
    "names_and_all": (["export", "se", "--all"], "give recipe names or --all, not both"),
    "no_names": (["export"], "name at least one recipe"),
    "module_without_inputs": (["export", "--module", "tests.user_modules:make_gate"], "--module needs its inputs: --input"),
    "checkpoint_with_all": (["export", "--all", "--checkpoint", "{file}"], "--checkpoint needs exactly one recipe"),
    "opset_unsupported": (["export", "se", "--opset", "9"], "opset 9 is not supported"),
    "shape_syntax": (["verify", "se", "--shape", "H:37"], "expected SYMBOL=INT pairs"),
    "shape_unknown_symbol": (["verify", "se", "--shape", "Q=3"], "unknown symbol 'Q'"),
    "shape_out_of_range": (["verify", "se", "--shape", "H=100000"], "H=100000 is outside the recipe's range"),
    "missing_artifact": (["verify", "cbam", "--out", "{folder}"], "no artifact in"),
    "package_nowhere": (["package", "se"], "--triton REPO and/or --kserve DIR"),
    "package_batch_too_big": (["package", "se", "--triton", "{folder}/repo", "--max-batch", "99"], "--max-batch 99 is larger"),
    "bench_unknown_backend": (["bench", "se", "--backends", "tensorflow"], "tensorflow"),
    "serve_not_an_artifact": (["serve", "{folder}"], "no artifact in"),
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_bad_arguments_are_one_line(case, out, tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    args, expected = USAGE[case]
    args = [a.format(file=tmp_path / "a_file", folder=tmp_path / "a_folder") for a in args]
    if "--out" not in args:
        args += ["--out", out] if args and args[0] not in ("exprot", "serve") else []
    before = tree(tmp_path)
    assert_one_line_error(cli(*args), expected)
    assert tree(tmp_path) == before
