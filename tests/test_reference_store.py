"""The PyTorch reference an artifact stores (deploykit/reference.py): what it holds, its bounds, and its lookups."""

import numpy as np
import torch

from deploykit.parity import inputs_for
from deploykit.recipe import find_recipe
from deploykit.reference import Reference, StoredReference, record_reference
from deploykit.runners.torch_runner import TorchRunner
from deploykit.zoo import create


def _recorded(tmp_path, bound=2**30, budget=60.0):
    recipe = find_recipe("sdpa_simplified")  # three inputs, small shapes: a second to record
    torch.manual_seed(0)
    model = create(recipe.module, **recipe.args).eval()
    inputs = inputs_for(recipe, recipe.sweep(edges=True))
    with TorchRunner(model, recipe) as runner:
        data, record = record_reference(runner, recipe, inputs, bound, budget)
    if data is not None:
        (tmp_path / "reference.npz").write_bytes(data)
    return recipe, model, inputs, record


def test_the_store_gives_back_pytorchs_outputs_and_float64_at_the_inputs_it_saw(tmp_path):
    recipe, model, inputs, record = _recorded(tmp_path)
    assert [c["label"] for c in record["cases"]] == [i.label for i in inputs] and not record["left_out"]
    with StoredReference(tmp_path / "reference.npz", record, recipe) as stored, TorchRunner(model, recipe) as live:
        for item in inputs:
            assert stored.holds(item.feed)
            expected, expected64 = live.infer(item.feed), live.infer_float64(item.feed)
            got, got64 = stored.infer(item.feed), stored.infer_float64(item.feed)
            for name in expected:
                assert np.array_equal(got[name], expected[name])
                # float64 is stored as its difference from FP32, in float32: exact to ~1e-14 of the value
                assert np.abs(got64[name] - expected64[name]).max() <= 1e-12 * max(1.0, np.abs(expected64[name]).max())
        other = recipe.make_inputs(recipe.case("opt"), seed=1)  # the same shape, other data: not held
        assert not stored.holds(other)


def test_cases_past_the_size_bound_are_left_out_and_listed(tmp_path):
    recipe, _, inputs, full = _recorded(tmp_path)
    sizes = {c["label"]: c for c in full["cases"]}
    bound = full["bytes"] // 2
    _, _, _, record = _recorded(tmp_path, bound=bound)
    assert record["bytes"] <= bound and record["left_out"]
    assert {c["label"] for c in record["cases"]} | {c["label"] for c in record["left_out"]} == set(sizes)


def test_past_the_float64_budget_the_floor_comes_from_the_module_or_is_not_applied(tmp_path):
    recipe, model, inputs, record = _recorded(tmp_path, budget=0.0)
    flags = [c["float64"] for c in record["cases"]]
    assert flags[0] and not any(flags[1:])  # the first run measures the cost; nothing after fits a budget of 0
    later = inputs[1].feed
    without = Reference(StoredReference(tmp_path / "reference.npz", record, recipe), None, "pass the module")
    with without.runner(recipe, [later]) as runner:
        assert runner.infer_float64(later) is None  # no floor: the check is stricter, never looser
    with_module = Reference(StoredReference(tmp_path / "reference.npz", record, recipe), lambda: model)
    with with_module.runner(recipe, [later]) as runner, TorchRunner(model, recipe) as live:
        got, expected = runner.infer_float64(later), live.infer_float64(later)
        assert all(np.array_equal(got[n], expected[n]) for n in expected)
