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


class _PyramidByFunction(nn.Module):
    """Pyramid pooling by function, as smp's PSPNet does under torch.onnx's export (F.interpolate area), with the
    eager path through F.adaptive_avg_pool2d."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        outs = [x]
        for p in (1, 2, 3):
            pooled = (torch.nn.functional.interpolate(x, size=(p, p), mode="area") if torch.onnx.is_in_onnx_export()
                      else torch.nn.functional.adaptive_avg_pool2d(x, p))
            outs.append(torch.nn.functional.interpolate(self.conv(pooled), size=(h, w), mode="bilinear",
                                                        align_corners=True))
        return torch.cat(outs, 1)


def test_functional_pooling_is_swapped_exactly_and_recorded_only_where_it_is_called():
    from deploykit.export.rewrites import functional_pooling_swapped
    from deploykit.runners.torch_runner import FlatIO

    torch.manual_seed(0)
    flat = FlatIO(_PyramidByFunction().eval())
    for h, w in SHAPES[:5]:
        x = torch.randn(2, 4, h, w)
        with torch.no_grad():
            expected = flat(x)
            with functional_pooling_swapped() as swap:
                got = flat(x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert [r.description for r in swap] == [  # the global pool (1 x 1) is exported exactly as it is
        "F.adaptive_avg_pool2d to (2, 2) -> exact bin-averaging MatMul",
        "F.adaptive_avg_pool2d to (3, 3) -> exact bin-averaging MatMul"]
    functional = torch.nn.functional  # the swap ends with the block
    assert functional.interpolate.__module__ == functional.adaptive_avg_pool2d.__module__ == "torch.nn.functional"


@pytest.mark.slow  # a whole export (~4 s); the swap itself is checked in the fast tier above
def test_functional_area_pooling_exports_exactly_where_it_was_refused(tmp_path):
    import numpy as np
    import onnxruntime as ort

    import deploykit

    torch.manual_seed(0)
    module = _PyramidByFunction().eval()
    result = deploykit.export(module, {"x": "B,4,H,W"}, {"B": "1:2:3", "H": "8:16:32", "W": "8:16:32"},
                              name="pyramid", out=tmp_path, reference_mb=0)
    assert result.exporter == "torchscript"
    assert [r["description"] for r in result.manifest["rewrites"]] == [
        'F.interpolate(mode="area") to (2, 2) -> exact bin-averaging MatMul',
        'F.interpolate(mode="area") to (3, 3) -> exact bin-averaging MatMul']
    session = ort.InferenceSession(str(tmp_path / "pyramid" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 4, 29, 11)).astype(np.float32)  # in range, never swept
    with torch.no_grad():
        expected = module.double()(torch.from_numpy(x).double()).numpy()
    assert np.abs(session.run(None, {"x": x})[0] - expected).max() < 1e-5
