"""Recipes are validated data: every shipped one loads, every broken field is named."""

import pytest

from deploykit.recipe import RecipeError, find_recipe, load_all, load_recipe

from .conftest import RECIPES

GOOD = """
module = "se"
opset = 17
[args]
channel = 16
[[inputs]]
name = "x"
shape = ["B", 16, "H", "W"]
[[outputs]]
name = "y"
shape = ["B", 16, "H", "W"]
[dims.B]
min = 1
opt = 2
max = 4
[dims.H]
min = 8
opt = 16
max = 32
[dims.W]
min = 8
opt = 16
max = 32
"""


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_recipe_is_valid():
    recipes = load_all(RECIPES)
    assert len(recipes) >= 19
    for recipe in recipes:
        assert recipe.opset == 17
        assert len(recipe.sweep()) >= 5 or not recipe.dynamic_symbols, recipe.name


def test_good_recipe_loads(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    assert recipe.module == "se" and recipe.dynamic_symbols == ["B", "H", "W"]
    assert recipe.tolerance("fp32").atol == 1e-4
    assert recipe.tolerance("fp16").cosine_min is not None


@pytest.mark.parametrize("old,new,field,message", [
    ("min = 8\nopt = 16\nmax = 32\n[dims.W]", "min = 64\nopt = 16\nmax = 32\n[dims.W]", "dims.H", r"min \(64\) > max \(32\)"),
    ("min = 8\nopt = 16\nmax = 32\n[dims.W]", "min = 8\nopt = 40\nmax = 32\n[dims.W]", "dims.H.opt", "outside"),
    ('shape = ["B", 16, "H", "W"]\n[[outputs]]', 'shape = ["B", 16, "Q", "W"]\n[[outputs]]', r"inputs\[0\].shape\[2\]",
     "unknown symbol 'Q'"),
    ('module = "se"', 'module = "sse"', "module", "unknown module 'sse'.*did you mean se"),
    ("channel = 16", "channel = 16\nchanel = 3", "args.chanel", "takes no argument 'chanel'"),
    ("opset = 17", "opset = 7", "opset", "outside the supported range"),
    ("min = 1\nopt = 2\nmax = 4", "min = 1\nopt = 2\nmax = 4\nmultiple_of = 2", "dims.B.min", "not a multiple"),
    ("[dims.B]", "[dims.Z]\nvalue = 3\n[dims.B]", "dims.Z.reason", "is required"),
    ("[dims.B]", "[dims.Z]\nvalue = 3\nreason = \"x\"\n[dims.B]", "dims.Z", "not used by any input"),
    ('shape = ["B", 16, "H", "W"]\n[[outputs]]', 'shape = ["B", 16, "H/2", "W"]\n[[outputs]]', "x.shape", "not whole"),
    ("opset = 17", "opset = 17\nopsett = 3", "opsett", "unknown field"),
])
def test_invalid_field_names_file_field_and_problem(tmp_path, old, new, field, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RecipeError, match=rf"{path}: {field}: .*{message}"):
        load_recipe(path)


def test_not_toml_is_reported(tmp_path):
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(write(tmp_path, "module = "))


def test_unknown_recipe_name_suggests(tmp_path):
    with pytest.raises(RecipeError, match="did you mean cbam"):
        find_recipe("cbamm", RECIPES)


def test_static_dims_are_carried_with_their_reason():
    recipe = find_recipe("danet", RECIPES)
    assert set(recipe.static_symbols) == {"H", "W"}
    assert "Linear" in recipe.dims["H"].reason
    assert all(c.values["H"] == recipe.dims["H"].value for c in recipe.sweep())


def test_related_inputs_stay_consistent_across_the_sweep():
    recipe = find_recipe("fpn", RECIPES)
    for case in recipe.sweep():
        shapes = recipe.input_shapes(case)
        c3, c4, c5 = (shapes[t.name] for t in recipe.inputs)
        assert c3[2] == 2 * c4[2] == 4 * c5[2] and c3[3] == 2 * c4[3] == 4 * c5[3]
