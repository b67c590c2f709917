"""Bad-input suite, recipe class (issue 13): recipes a careless or hostile user writes.

Each case puts one recipe file in a fresh folder and runs ``deploykit export NAME --recipes DIR --out OUT``:
exit 2, one line naming the file, the field and what is wrong, no traceback, and nothing written under OUT.
Loading stops at validation, so no module is built and no case takes more than milliseconds.
"""

import time

import pytest

from .checks import assert_one_line_error, cli

SE = """module = "se"
opset = 17
call = "args"

[args]
channel = 64
reduction = 16

[[inputs]]
name = "x"
shape = ["B", 64, "H", "W"]

[[outputs]]
name = "y"
shape = ["B", 64, "H", "W"]

[dims.B]
min = 1
opt = 2
max = 8

[dims.H]
min = 8
opt = 32
max = 64

[dims.W]
min = 8
opt = 32
max = 64
"""


def _edit(old: str, new: str) -> str:
    assert old in SE, old
    return SE.replace(old, new, 1)


H = "[dims.H]\nmin = 8\nopt = 32\nmax = 64\n"
INPUT = '[[inputs]]\nname = "x"\nshape = ["B", 64, "H", "W"]\n'

CASES = {
    # syntax and top level
    "not_toml": ("module = 'se\n", "not valid TOML"),
    "not_utf8": (b"module = \"se\xff\"\n", "not valid TOML"),
    "unknown_field": ("colour = 'red'\n" + SE, "colour: unknown field"),
    "module_and_factory": ('factory = "pkg.mod:make"\n' + SE, "give exactly one of `module`"),
    "neither_module_nor_factory": (_edit('module = "se"\n', ""), "give exactly one of `module`"),
    "unknown_zoo_module": (_edit('module = "se"', 'module = "sse"'), "module:"),
    "factory_not_importable": (_edit('module = "se"', 'factory = "no_such_pkg.nets:make"'),
                               "cannot import 'no_such_pkg.nets'"),
    "factory_without_colon": (_edit('module = "se"', 'factory = "no_such_pkg.nets"'), "must look like package.module:factory"),
    "opset_out_of_range": (_edit("opset = 17", "opset = 99"), "opset: 99 is outside"),
    "opset_a_string": (_edit("opset = 17", 'opset = "17"'), "opset: must be int"),
    "opset_a_bool": (_edit("opset = 17", "opset = true"), "opset: must be int"),
    "call_unknown": (_edit('call = "args"', 'call = "keywords"'), "call: must be"),
    "args_unknown_argument": (_edit("reduction = 16", "reduction = 16\nsqueeze = 3"), "args.squeeze: se takes no argument"),
    # dims
    "dims_missing": (SE.split("[dims.B]")[0], "dims: is required"),
    "dim_min_above_max": (_edit(H, "[dims.H]\nmin = 64\nopt = 32\nmax = 8\n"), "dims.H: min (64) > max (8)"),
    "dim_opt_outside": (_edit(H, "[dims.H]\nmin = 8\nopt = 99\nmax = 64\n"), "dims.H.opt: opt (99) is outside"),
    "dim_min_zero": (_edit(H, "[dims.H]\nmin = 0\nopt = 32\nmax = 64\n"), "dims.H.min: must be >= 1"),
    "dim_step_zero": (_edit(H, H + "multiple_of = 0\n"), "dims.H.multiple_of: must be >= 1"),
    "dim_not_a_multiple": (_edit(H, "[dims.H]\nmin = 8\nopt = 32\nmax = 66\nmultiple_of = 8\n"),
                           "dims.H.max: 66 is not a multiple"),
    "dim_float": (_edit(H, "[dims.H]\nmin = 8\nopt = 32.5\nmax = 64\n"), "dims.H.opt: must be int"),
    "dim_unknown_field": (_edit(H, H + "step = 2\n"), "dims.H: unknown field(s) step"),
    "static_dim_without_reason": (_edit(H, "[dims.H]\nvalue = 32\n"), "dims.H.reason: is required"),
    "static_dim_with_range": (_edit(H, "[dims.H]\nvalue = 32\nreason = 'fixed'\nmin = 8\n"),
                              "a static dim (value=...) takes no min/opt/max"),
    "dim_unused": (SE + "[dims.Z]\nmin = 1\nopt = 1\nmax = 2\n", "dims.Z: is not used by any input shape"),
    # tensors
    "inputs_empty": ("inputs = []\n" + _edit(INPUT, ""), "inputs: needs at least one entry"),
    "inputs_a_table": (_edit(INPUT, '[inputs]\nname = "x"\n'), "inputs: must be list"),
    "input_duplicate_name": (_edit(INPUT, INPUT + INPUT), "inputs[1].name: duplicate name 'x'"),
    "input_unknown_symbol": (_edit('shape = ["B", 64, "H", "W"]', 'shape = ["B", 64, "Q", "W"]'),
                             "unknown symbol 'Q'"),
    "input_bad_expression": (_edit('shape = ["B", 64, "H", "W"]', 'shape = ["B", 64, "H**2", "W"]'),
                             "is not a dim expression"),
    "input_negative_size": (_edit('shape = ["B", 64, "H", "W"]', 'shape = ["B", -64, "H", "W"]'),
                            "static size -64 must be >= 1"),
    "input_bool_size": (_edit('shape = ["B", 64, "H", "W"]', 'shape = ["B", true, "H", "W"]'), "is not a dim"),
    "input_not_whole": (_edit('shape = ["B", 64, "H", "W"]', 'shape = ["B", 64, "H/3", "W"]'),
                        "H/3 is not whole at H=8"),
    "input_bad_distribution": (_edit('name = "x"\n', 'name = "x"\ndist = "cauchy"\n'), "dist: must be one of"),
    # tolerances and calibration
    "tolerance_unknown_precision": (SE + "[tolerance.fp8]\natol = 1.0\n", "tolerance.fp8: unknown precision"),
    "tolerance_negative": (SE + "[tolerance.fp32]\natol = -1.0\n", "tolerance.fp32.atol: must be a non-negative number"),
    "calibration_unknown_field": (SE + "[calibration]\nbrightness = 2\n", "calibration.brightness: unknown field"),
    "calibration_input_unknown": (SE + "[calibration]\ninput = 'image'\n", "calibration.input: 'image' is not an input"),
    "calibration_resize_bad": (SE + "[calibration]\nresize = [0, 32]\n", "calibration.resize: must be [H, W]"),
    # the size bound (cause 7)
    "size_bound_input": (_edit(H, "[dims.H]\nmin = 8\nopt = 32\nmax = 100000\n"),
                         "inputs[0] 'x': 8x64x100000x64 = 3,276,800,000 elements"),
    "size_bound_output": (_edit('name = "y"\nshape = ["B", 64, "H", "W"]', 'name = "y"\nshape = ["B", 64, "64*H", "64*W"]'),
                          "outputs[0] 'y': 8x64x4096x4096"),
    "size_bound_huge_dim": (_edit(H, "[dims.H]\nmin = 8\nopt = 32\nmax = 1000000000000000\n"),
                            "raise the bound with max_elements = "),
    "size_bound_zero": ("max_elements = 0\n" + SE, "max_elements: must be >= 1"),
    "size_bound_not_int": ("max_elements = 'lots'\n" + SE, "max_elements: must be int"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_recipe_is_one_line_and_writes_nothing(case, tmp_path):
    text, expected = CASES[case]
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "mine.toml").write_bytes(text if isinstance(text, bytes) else text.encode())
    started = time.perf_counter()
    line = assert_one_line_error(cli("export", "mine", "--recipes", recipes, "--out", tmp_path / "out"), expected)
    assert time.perf_counter() - started < 10, "validation must not materialise a huge range"
    assert "mine.toml" in line
    assert not (tmp_path / "out").exists()


def test_the_size_bound_says_how_much_and_how_to_raise_it(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "mine.toml").write_text(_edit(H, "[dims.H]\nmin = 8\nopt = 32\nmax = 100000\n"))
    listed = cli("list", "--recipes", recipes, "--json")  # list names every bad recipe in its row, and exits 1
    assert listed.exit_code == 1 and "Traceback" not in listed.output
    line = __import__("json").loads(listed.stdout)[0]["error"]
    assert "(12.2 GiB as float32)" in line and "over the bound of 268,435,456 elements (1 GiB)" in line
    assert "lower dims.B.max, dims.H.max, dims.W.max, or raise the bound with max_elements = 3300000000" in line
    # raising the bound is the documented way out: the same recipe then validates
    (recipes / "mine.toml").write_text("max_elements = 3300000000\n" + (recipes / "mine.toml").read_text())
    result = cli("list", "--recipes", recipes, "--json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("filename", [".hidden.toml", "my recipe.toml", "-rf.toml"])
def test_a_recipe_file_name_that_cannot_name_a_folder_is_refused(filename, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / filename).write_text(SE)
    assert_one_line_error(cli("export", "--module", "x:y", "--recipe", recipes / filename, "--out", tmp_path / "out"),
                          "is not a valid name")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["a file", "a missing folder"])
def test_deploykit_recipes_must_be_a_folder(kind, tmp_path):
    target = tmp_path / "recipes.toml"
    if kind == "a file":
        target.write_text(SE)
    expected = "is not a folder" if kind == "a file" else "does not exist"
    for args in (["list"], ["export", "--all", "--out", tmp_path / "out"], ["verify", "se"]):
        assert_one_line_error(cli(*args, env={"DEPLOYKIT_RECIPES": str(target)}), f"DEPLOYKIT_RECIPES={target} {expected}")
    assert not (tmp_path / "out").exists()


def test_recipes_option_must_be_a_folder(tmp_path):
    assert_one_line_error(cli("list", "--recipes", tmp_path / "nowhere"), "recipe folder")
