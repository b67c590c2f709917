"""The zoo, swept over the registry and the recipes (timm's test_models habit)."""

import numpy as np
import pytest
import torch

from deploykit import zoo as registry
from deploykit.errors import DeployKitError
from deploykit.recipe import find_recipe, load_all
from deploykit.runners.torch_runner import TorchRunner
from deploykit.export.weights import seeded_model

from .conftest import RECIPES, TABLES, recipe_names, slow_composite

ZOO = ["asff", "cbam", "coordatt", "cot", "danet", "eca", "fpn", "mdaf", "mhsa", "msaf", "msfm", "pmfs", "pmsa",
       "sdpa_simplified", "se", "sk", "temporal_conv", "triplet"]


def test_every_documented_module_is_registered():
    assert set(ZOO) <= set(registry.list_modules())
    assert "composite" in registry.list_modules()


def test_every_registered_module_has_a_recipe():
    covered = {r.module for r in load_all(RECIPES)}
    assert set(registry.list_modules()) == covered


@pytest.mark.parametrize("name", slow_composite(recipe_names()))
def test_runs_over_the_sweep(name):
    """Eval mode with non-trivial BN stats: min/opt/max and off-grid shapes give declared, finite outputs."""
    recipe = find_recipe(name, RECIPES)
    cases = recipe.sweep()
    assert {"min", "opt", "max"} <= {c.label for c in cases}
    with TorchRunner(seeded_model(recipe), recipe) as runner:
        for case in cases:
            outputs = runner.infer(recipe.make_inputs(case))
            for out_name, shape in recipe.output_shapes(case).items():
                assert outputs[out_name].shape == shape, (case.describe(), out_name)
                assert np.isfinite(outputs[out_name]).all(), (case.describe(), out_name)


def test_off_grid_cases_have_unequal_odd_sizes():
    cases = {c.label: c.values for c in find_recipe("cbam", RECIPES).sweep()}
    off = cases["off-grid-1"]
    assert off["H"] != off["W"]
    assert off["H"] % 2 == 1 and off["W"] % 2 == 1


def _table(name):
    rows = []
    for line in (TABLES / f"{name}.txt").read_text().splitlines():
        key, _, shape = line.partition("\t")
        rows.append((key, tuple(int(s) for s in shape.split(",") if s)))
    return rows


@pytest.mark.parametrize("name", recipe_names())
def test_state_dict_matches_the_seed_table(name):
    """Keys, order and shapes equal the seed's, so users' checkpoints load with strict=True."""
    recipe = find_recipe(name, RECIPES)
    model = recipe.build()
    table = _table(name)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == table
    checkpoint = {k: torch.randn(s) if s else torch.tensor(3) for k, s in table}
    checkpoint = {k: v.abs() if "running_var" in k else v for k, v in checkpoint.items()}
    model.load_state_dict(checkpoint, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, checkpoint[key].to(value.dtype)), key


def test_unknown_module_suggests_close_matches():
    with pytest.raises(DeployKitError, match=r"unknown module 'cbma'.*did you mean cbam"):
        registry.create("cbma")


def test_create_rejects_an_argument_the_module_does_not_take():
    with pytest.raises(DeployKitError, match=r"'se' takes no argument 'chanel'"):
        registry.create("se", chanel=64)


def test_register_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("se")(lambda: None)


@pytest.mark.parametrize("name", slow_composite(recipe_names()))
def test_reference_outputs_depend_on_the_input(name):
    """A reference whose output ignores its input would make every parity check vacuous
    (composite's did, at 1e-7, before BN statistics were measured instead of drawn at random)."""
    recipe = find_recipe(name, RECIPES)
    case = recipe.case("opt")
    with TorchRunner(seeded_model(recipe), recipe) as runner:
        outputs = [next(iter(runner.infer(recipe.make_inputs(case, seed=s)).values())) for s in range(3)]
    stacked = np.stack(outputs)
    assert stacked.std(axis=0).mean() > 0.05 * np.abs(stacked).mean()


def test_smooth_distribution_is_image_like_and_seeded():
    recipe = find_recipe("composite", RECIPES)
    a = recipe.make_inputs(recipe.case("opt"), seed=1)["image"]
    b = recipe.make_inputs(recipe.case("opt"), seed=1)["image"]
    assert np.array_equal(a, b) and a.min() >= 0 and a.max() <= 1
    # neighbouring pixels are strongly correlated, unlike i.i.d. noise
    assert np.corrcoef(a[..., :-1].ravel(), a[..., 1:].ravel())[0, 1] > 0.95
