"""The exact export rewrites equal the modules they replace, at many shapes (non-divisible ones too)."""

import pytest
import torch
from torch import nn

from deploykit.errors import ExportRefused
from deploykit.recipe import find_recipe
from deploykit.export.rewrites import (ExactAdaptiveAvgPool2d, ExportableMultiheadAttention, GlobalMaxPool2d,
                                apply_rewrites, bin_averaging_matrix)
from deploykit.export.weights import seeded_model

from .conftest import RECIPES

SHAPES = [(37, 53), (4, 4), (5, 9), (64, 17), (1, 1), (3, 2), (16, 16), (23, 31)]


@pytest.mark.parametrize("size", [4, (4, 4), 8, (3, 5), (None, 1), (1, None), 1, (1, 1), (None, 4), (2, None)])
def test_exact_adaptive_avg_pool_equals_torch(size):
    torch.manual_seed(0)
    for h, w in SHAPES:
        x = torch.randn(2, 3, h, w)
        expected = nn.AdaptiveAvgPool2d(size)(x)
        torch.testing.assert_close(ExactAdaptiveAvgPool2d(size)(x), expected, rtol=1e-5, atol=1e-6)


def test_bin_matrix_covers_torch_bins_for_37_into_4():
    matrix = bin_averaging_matrix(37, 4, torch.zeros(1))
    # ATen bins: [floor(i*37/4), ceil((i+1)*37/4)) = [0,10) [9,19) [18,28) [27,37): overlapping, uneven.
    assert [int((row > 0).sum()) for row in matrix] == [10, 10, 10, 10]
    assert matrix[1, 9] > 0 and matrix[0, 9] > 0
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(4))


def test_global_max_pool_equals_adaptive_max_pool():
    for h, w in SHAPES:
        x = torch.randn(2, 3, h, w)
        torch.testing.assert_close(GlobalMaxPool2d()(x), nn.AdaptiveMaxPool2d(1)(x))


def test_non_global_adaptive_max_pool_is_refused():
    with pytest.raises(ExportRefused, match="AdaptiveMaxPool2d"):
        apply_rewrites(nn.Sequential(nn.AdaptiveMaxPool2d(4)))


@pytest.mark.parametrize("batch_first", [False, True])
def test_exportable_mha_equals_torch(batch_first):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    rewritten = ExportableMultiheadAttention(mha)
    for length, batch in [(1, 1), (7, 2), (16, 3), (33, 1), (64, 2)]:
        shape = (batch, length, 16) if batch_first else (length, batch, 16)
        x = torch.randn(shape)
        out, weights = rewritten(x, x, x)
        ref_out, ref_weights = mha(x, x, x)
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(weights, ref_weights, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["coordatt", "msaf", pytest.param("msaf_dsnet", marks=pytest.mark.slow),  # msaf's rewrites
                                  "cbam", "pmsa", "se"])
def test_rewritten_zoo_modules_equal_the_originals(name):
    recipe = find_recipe(name, RECIPES)
    model = seeded_model(recipe)
    rewritten, applied = apply_rewrites(model)
    assert applied, "these modules contain something to rewrite"
    assert model is not rewritten and not any(isinstance(m, ExactAdaptiveAvgPool2d) for m in model.modules())
    cases = recipe.sweep(seed=1, off_grid=4)
    assert len(cases) >= 5
    for case in cases:
        feed = [torch.from_numpy(v) for v in recipe.make_inputs(case).values()]
        with torch.no_grad():
            torch.testing.assert_close(rewritten(*feed), model(*feed), rtol=1e-4, atol=1e-5)
