"""A verdict that cannot be fooled (issue 22): every shape guard checked over the whole declared grid,
deterministic comparisons, and every tensor of the model in the artifact."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from deploykit.errors import ExportRefused
from deploykit.export import ExportOptions, export_onnx
from deploykit.parity.metrics import compare_output
from deploykit.recipe.load import recipe_from_bytes
from deploykit.tensors.shapes import sweep
from deploykit.recipe.spec import Tolerance

from . import size_branch_modules as modules

ROOT = Path(__file__).resolve().parents[1]
DEPLOYKIT = str(Path(sys.executable).parent / "deploykit")


def _recipe(tmp_path, name, dims, output=modules.SAME, inputs=None):
    inputs = inputs or ([("x", '["B", 4, "H", "W"]'), ("y", '["B", 4, "2*H", "2*W"]')] if name == "DerivedInput"
                        else [("x", '["B", 4, "H", "W"]')])
    text = f'factory = "tests.size_branch_modules:make"\n[args]\nname = "{name}"\n'
    for input_name, shape in inputs:
        text += f'[[inputs]]\nname = "{input_name}"\nshape = {shape}\n'
    text += f'[[outputs]]\nname = "out"\nshape = {output}\n'
    for symbol, spec in dims.items():
        bounds, _, step = spec.partition("/")
        low, opt, high = bounds.split(":")
        text += f"[dims.{symbol}]\nmin = {low}\nopt = {opt}\nmax = {high}\n" + (f"multiple_of = {step}\n" if step else "")
    return recipe_from_bytes(text.encode(), tmp_path / f"{name}.toml")


def _refusal(tmp_path, name, sweep_seed=0, monkeypatch=None):
    dims, output = modules.BRANCHING[name]
    recipe = _recipe(tmp_path, name, dims, output)
    if monkeypatch is not None:  # another sweep: the verdict must not move
        monkeypatch.setattr(type(recipe), "sweep", lambda self, seed=0, **kw: sweep(self.dims, seed=sweep_seed, **kw))
    with pytest.raises(ExportRefused) as refused:
        export_onnx(recipe, tmp_path / "out")
    assert not (tmp_path / "out" / name / "model.onnx").exists()
    return str(refused.value)


@pytest.mark.parametrize("name", sorted(modules.BRANCHING))
def test_a_size_branch_is_refused_with_its_line_and_a_declared_value(tmp_path, name):
    message = _refusal(tmp_path, name)
    assert "\n" not in message and len(message) < 1000, message
    lines = {modules.site(name), modules.site(name) + 1}  # a loop is named at its body's first line
    assert any(f"size_branch_modules.py:{line}" in message for line in lines), message
    assert "specialised to its example shape" in message, message
    assert re.search(r"[BHW]=\d+", message), message  # a declared value where the trace is wrong


# every module at five sweeps is 80 exports (~3 min): CI runs five kinds, DEPLOYKIT_ALL_SWEEPS=1 all of them
SWEPT = sorted(modules.BRANCHING) if os.environ.get("DEPLOYKIT_ALL_SWEEPS") else \
    ["EqStepped", "ResidueStepped", "BatchNotTwo", "EqOnGrid32", "ThresholdGt"]


@pytest.mark.parametrize("name", SWEPT)
def test_the_refusal_does_not_depend_on_the_sweep(tmp_path, monkeypatch, name):
    """Five sweeps, one refusal: the range analysis never reads the sweep."""
    seeds = range(5)
    messages = {re.sub(r"\(details: .*\)", "", _refusal(tmp_path / str(seed), name, seed, monkeypatch)) for seed in seeds}
    # the same decision, line, guard and declared value; the error sizes differ (a conv's fresh weights per export)
    decisions = {re.sub(r"\d+/\d+ values|max abs [\d.e+-]+|[\d.e+-]+x PyTorch", "#", m) for m in messages}
    assert len(decisions) == 1, decisions
    assert f"size_branch_modules.py:{modules.site(name)}" in messages.pop()


def test_the_issue_case_names_the_guard_and_h_40(tmp_path):
    message = _refusal(tmp_path, "EqStepped")
    assert "H != 40" in message and "H=40" in message, message


def test_a_guard_true_over_the_whole_range_is_proved(tmp_path):
    recipe = _recipe(tmp_path, "GuardTrueEverywhere", modules.STEPPED)
    result = export_onnx(recipe, tmp_path / "out")
    analysis = result.manifest["checks"]["specialisation"]["range"]
    assert analysis["status"] == "proved" and analysis["guards_evaluated"] >= 1 and not analysis["violated"]


def _run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_a_shape_keyed_cache_at_fixed_size_is_verified_at_every_batch(tmp_path):
    """Ultralytics' Detect habit: the cache guard names B, but the anchors depend on H and W only."""
    recipe = _recipe(tmp_path, "DetectLike", {"B": "1:2:6", "H": "24:24:24", "W": "20:20:20"})
    result = export_onnx(recipe, tmp_path / "out")
    analysis = result.manifest["checks"]["specialisation"]["range"]
    assert analysis["status"] == "partitioned", analysis
    assert sorted(p["B"] for p in analysis["checked_points"]) == [1, 3, 4, 5, 6]
    module = modules.DetectLike()
    module.load_state_dict(torch.load(tmp_path / "out" / "DetectLike" / "weights.pt"))
    for batch in range(1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, 4, 24, 20)).astype(np.float32)
        with torch.no_grad():
            expected = module.double()(torch.from_numpy(x).double()).numpy()
        got = _run_onnx(result.path, {"x": x})
        assert np.abs(got - expected).max() < 1e-5, batch


def test_fresh_noise_in_forward_is_refused_naming_the_op(tmp_path):
    recipe = _recipe(tmp_path, "Noisy", modules.STEPPED)
    with pytest.raises(ExportRefused) as refused:
        export_onnx(recipe, tmp_path / "out")
    message = str(refused.value)
    assert "changes between two identical calls" in message and "rand_like" in message, message
    assert f"size_branch_modules.py:{modules.site('Noisy')}" in message, message
    assert not (tmp_path / "out" / "Noisy" / "model.onnx").exists()


def test_an_in_place_input_change_is_verified_exactly(tmp_path):
    from deploykit.verify import VerifyOptions, verify_artifact

    recipe = _recipe(tmp_path, "InPlaceInput", modules.STEPPED)
    result = export_onnx(recipe, tmp_path / "out")
    report = verify_artifact(recipe, tmp_path / "out", VerifyOptions(write=False))
    worst = max(c.max_abs for c in report.cases)
    assert report.passed and worst <= 1e-5, worst
    module = modules.InPlaceInput()
    module.load_state_dict(torch.load(tmp_path / "out" / "InPlaceInput" / "weights.pt"))
    x = np.random.default_rng(5).standard_normal((3, 4, 48, 24)).astype(np.float32)
    got = _run_onnx(result.path, {"x": x.copy()})
    with torch.no_grad():
        expected = module(torch.from_numpy(x.copy())).numpy()
    assert np.abs(got - expected).max() <= 1e-5


def test_a_floor_that_is_a_large_share_of_the_output_excuses_nothing():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(1000)
    torch_fp32 = (truth + rng.standard_normal(1000) * 0.5).astype(np.float32)  # "unstable": 0.5 sigma off float64
    candidate = (truth + rng.standard_normal(1000) * 0.5).astype(np.float32)
    tolerance = Tolerance(atol=1e-4, rtol=1e-4, cosine_min=0.9999, snr_min_db=None)
    judged = compare_output("y", candidate, torch_fp32, tolerance, truth)
    assert not judged.passed and "unstable, not rounding" in judged.failures[0]
    # rounding-sized floors still excuse rounding-sized errors
    small = (truth + rng.standard_normal(1000) * 1e-6).astype(np.float32)
    near = (truth + rng.standard_normal(1000) * 2e-6).astype(np.float32)
    assert compare_output("y", near, small, Tolerance(atol=1e-7, rtol=0.0, cosine_min=None, snr_min_db=None), truth).passed


NET = '''
import torch
from torch import nn


class FixedProjection(nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.register_buffer("proj", torch.randn(channels, channels), persistent=False)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return self.conv(torch.einsum("oc,bchw->bohw", self.proj, x))


def make():
    return FixedProjection()
'''


def _cli(cwd, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEPLOYKIT_RECIPES")}
    return subprocess.run([DEPLOYKIT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_non_persistent_buffer_is_in_the_artifact_and_verified_in_a_later_process(tmp_path):
    (tmp_path / "projnet.py").write_text(NET)
    done = _cli(tmp_path, "export", "--module", "projnet:make", "--input", "x=B,4,H,W", "--dim", "B=1:2:4",
                "--dim", "H=16:32:64/8", "--dim", "W=16:32:64/8", "--name", "proj")
    assert done.returncode == 0, done.stdout + done.stderr
    stored = torch.load(tmp_path / "artifacts" / "proj" / "weights.pt")
    assert set(stored) == {"conv.weight", "conv.bias"}  # a plain state_dict, as load_state_dict takes it
    assert set(torch.load(tmp_path / "artifacts" / "proj" / "buffers.pt")) == {"proj"}
    checked = _cli(tmp_path, "verify", "proj", "--json", *_TRUST)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    run = json.loads(checked.stdout)["runs"][0]
    assert run["passed"] and max(m["max_abs"] for c in run["cases"] for m in c["outputs"]) < 1e-5, run


_TRUST = ("--module", "projnet:make")  # a later process runs the code an artifact names only when the user names it


def test_a_range_torch_export_cannot_analyse_is_said_sampled_and_verify_covers_every_value(tmp_path):
    from deploykit.verify import VerifyOptions, verify_artifact

    recipe = _recipe(tmp_path, "NotExportable", {"B": "1:2:3", "H": "16:32:64/8", "W": "8:16:20"})
    result = export_onnx(recipe, tmp_path / "out")
    analysis = result.manifest["checks"]["specialisation"]["range"]
    assert analysis["status"] == "sampled" and "range sampled, not proved" in analysis["detail"]
    run = verify_artifact(recipe, tmp_path / "out", VerifyOptions(write=False))
    covered = {name: {c.shape[name] for c in run.cases} for name in ("B", "H", "W")}
    assert covered == {"B": {1, 2, 3}, "H": set(range(16, 65, 8)), "W": set(range(8, 21))}
    assert run.passed and run.coverage.startswith("range sampled, not proved")


@pytest.mark.slow  # the full suite: a range analysis run out to its budget
def test_past_the_analysis_budget_the_range_is_sampled_and_every_declared_value_is_checked(tmp_path):
    """A torch.export that runs out of time (timm's swin: minutes in sympy) is killed; export then compares
    every declared value of each axis, so a size branch is still refused at its value."""
    message = None
    recipe = _recipe(tmp_path, "EqStepped", modules.STEPPED)
    with pytest.raises(ExportRefused) as refused:
        export_onnx(recipe, tmp_path / "out", ExportOptions(analysis_budget=1e-3))
    message = str(refused.value)
    assert "H=40" in message and "range could not be proved" in message and "did not finish within" in message
    fine = _recipe(tmp_path, "GuardTrueEverywhere", modules.STEPPED)
    analysis = export_onnx(fine, tmp_path / "out", ExportOptions(analysis_budget=1e-3)).manifest["checks"]["specialisation"]["range"]
    assert analysis["status"] == "sampled" and "did not finish within 0.001 s" in analysis["detail"]
    assert {p["H"] for p in analysis["checked_points"] if p["H"] != 32} == {16, 24, 40, 48, 56, 64}
