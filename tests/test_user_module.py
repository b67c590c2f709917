"""The user's own module: exported with its exact weights, refused when its trace specialises, and the
recipe-free command line (`deploykit export --module ... --input ... --dim ...`, then `deploykit verify NAME`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from deploykit.errors import ExportRefused, UserCodeError
from deploykit.export import ExportOptions, export_onnx
from deploykit.parity.metrics import compare_output
from deploykit.recipe import Tolerance, recipe_from_bytes

from .specialising_modules import SPECIALISING, site

DEPLOYKIT = str(Path(sys.executable).parent / "deploykit")  # the console script, as a user runs it

TRAINED_NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1, stride=2)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d((3, 3))
        self.head = nn.Conv2d(channels, 4, 1)

    def forward(self, x):
        y = self.head(torch.relu(self.bn(self.conv(x))))
        return y, self.pool(y)


def trained(channels=8):
    """BatchNorm affine terms and running statistics far from their defaults, as after training."""
    torch.manual_seed(123)
    net = Net(channels)
    with torch.no_grad():
        net.bn.weight.uniform_(2, 3)
        net.bn.bias.uniform_(-1, 1)
        net.bn.running_mean.uniform_(-2, 2)
        net.bn.running_var.uniform_(3, 5)
    return net


def from_file(channels=8):
    """A factory that loads its trained state_dict from a file next to it."""
    import os
    net = Net(channels)
    net.load_state_dict(torch.load(os.path.join(os.path.dirname(__file__), "trained.pt")))
    return net


def fresh(channels=8):
    return Net(channels)  # random initialisation on every call


BUILT = []


def counted(channels=8):
    BUILT.append(Net(channels))  # random initialisation, as timm's create_model without weights
    return BUILT[-1]


def raises(channels=8):
    return Net(channels, 3)


def returns_none():
    return None
'''

DIMS = ["--dim", "B=1:2:4", "--dim", "H=32:64:128/32", "--dim", "W=32:64:128/32"]


def _run(cwd, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.pop("DEPLOYKIT_RECIPES", None)
    return subprocess.run([DEPLOYKIT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's project folder: their network in ./mynet.py, not installed, no PYTHONPATH."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "mynet.py").write_text(TRAINED_NET)
    sys.path.insert(0, str(folder))
    import mynet

    torch.save(mynet.trained(6).state_dict(), folder / "trained.pt")
    yield folder, mynet
    sys.path.remove(str(folder))


def _ort_matches_module(folder, module, shapes):
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    worst = 0.0
    for shape in shapes:
        x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in module.eval()(torch.from_numpy(x))]
        for got, want in zip(session.run(None, {"x": x}), expected):
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


# both in the full suite: export and verify in two subprocesses (~12 s); the fast tier keeps the in-process path below
@pytest.mark.slow
@pytest.mark.parametrize("factory", ["trained", "from_file"])
def test_factory_weights_are_exported_exactly_then_verify_takes_the_name_and_the_module(project, factory):
    folder, mynet = project
    result = _run(folder, "export", "--module", f"mynet:{factory}", "--input", "x=B,3,H,W", *DIMS,
                  "--args", '{"channels": 6}', "--name", f"net_{factory}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "weights as returned by the factory" in result.stdout and "(unchanged)" in result.stdout
    artifact = folder / "artifacts" / f"net_{factory}"
    users = getattr(mynet, factory)(6)
    stored = torch.load(artifact / "weights.pt")
    assert stored.keys() == users.state_dict().keys()
    assert all(torch.equal(stored[k], users.state_dict()[k]) for k in stored)  # nothing re-seeded or re-measured
    assert stored["bn.running_var"].min() > 2.9  # far from a fresh module's 1.0
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["weights"] == {"source": "factory", "factory": f"mynet:{factory}"}
    recipe = (artifact / "recipe.toml").read_text()
    assert 'shape = ["B", 4, "H/2", "W/2"]' in recipe and 'shape = ["B", 4, 3, 3]' in recipe
    # in-range shapes the sweep never draws (B=3 and H != W)
    assert _ort_matches_module(artifact, users, [(3, 3, 96, 32), (3, 3, 32, 128)]) <= 1e-5
    # the artifact's recipe names mynet's factory: the user names it again, deploykit runs no code an artifact names
    verified = _run(folder, "verify", f"net_{factory}", "--module", f"mynet:{factory}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "PASSED" in verified.stdout and "torch floor" in verified.stdout


def test_the_recipe_free_path_calls_the_factory_once_and_exports_that_module(project, tmp_path):
    """Inferring the outputs runs the user's module; exporting a second factory call instead would export other
    weights whenever the factory draws from the global RNG (timm's create_model with pretrained=False)."""
    from deploykit.recipe.from_module import recipe_from_flags

    folder, mynet = project
    mynet.BUILT.clear()
    recipe, model = recipe_from_flags("mynet:counted", ["x=B,3,H,W"], [d for d in DIMS if d != "--dim"],
                                      '{"channels": 6}', "counted", tmp_path)
    export_onnx(recipe, tmp_path, model=model)
    assert len(mynet.BUILT) == 1
    stored = torch.load(tmp_path / "counted" / "weights.pt")
    assert all(torch.equal(stored[k], v) for k, v in mynet.BUILT[0].state_dict().items())


@pytest.mark.slow
def test_verify_onnx_needs_no_checkpoint_when_the_factory_holds_the_weights(project, tmp_path):
    folder, mynet = project
    recipe_path = folder / "artifacts" / "net_trained" / "recipe.toml"
    if not recipe_path.exists():
        _run(folder, "export", "--module", "mynet:trained", "--input", "x=B,3,H,W", *DIMS,
             "--args", '{"channels": 6}', "--name", "net_trained")
    model = folder / "artifacts" / "net_trained" / "model.onnx"
    ok = _run(folder, "verify", "--onnx", str(model), "--recipe", str(recipe_path), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["passed"] is True
    fresh = recipe_path.read_text().replace('"mynet:trained"', '"mynet:fresh"')
    (tmp_path / "fresh.toml").write_text(fresh)
    refused = _run(folder, "verify", "--onnx", str(model), "--recipe", str(tmp_path / "fresh.toml"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: mynet:fresh returns different weights on every call (random initialisation): pass --checkpoint "
        "with the weights the ONNX was exported from"]


@pytest.mark.parametrize("args, message", [
    (["--module", "mynet:trained", "--input", "x=B,3,H,W", "--dim", "B=1:2:4"], "--input uses H, W but no --dim"),
    (["--module", "mynet:trained", "--input", "x=B,3,H,W", "--dim", "H=64-128", *DIMS[2:]], "--dim 'H=64-128': expected"),
    (["--module", "mynet:trained", "--input", "x=B,3,H,W", *DIMS, "--args", "{channels: 6}"], "--args is not valid JSON"),
    (["--module", "mynet:trained", "--input", "x=B,3,H,W", *DIMS, "--name", "../escape"], "--name '../escape' is not a valid name"),
    (["--module", "nosuchmodule:build", "--input", "x=B,3,H,W", *DIMS], "no module 'nosuchmodule' in the current directory"),
    (["--module", "mynet:nosuch", "--input", "x=B,3,H,W", *DIMS], "'mynet' has no callable 'nosuch' (it has: Net, counted, fresh, from_file"),
    (["--module", "mynet:raises", "--input", "x=B,3,H,W", *DIMS], "the factory mynet:raises() raised TypeError"),
    (["--module", "mynet:returns_none", "--input", "x=B,3,H,W", *DIMS], "returned NoneType, not a torch.nn.Module"),
    (["--module", "mynet:trained", *DIMS], "--module needs its inputs"),
    (["--input", "x=B,3,H,W", *DIMS], "add --module"),
])
def test_recipe_free_mistakes_are_one_line_errors(project, monkeypatch, args, message):
    from click.testing import CliRunner

    from deploykit.cli import main

    folder, _ = project
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, ["export", *args, "--out", str(folder / "mistakes")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output and not (folder / "mistakes" / "trained").exists()


# -- specialising traces -------------------------------------------------------------------------------
SPEC_RECIPE = '''factory = "tests.specialising_modules:make"
[args]
name = "{name}"
[[inputs]]
name = "x"
shape = ["B", 4, "H", "W"]
[[outputs]]
name = "y"
shape = {out}
[dims.B]
min = 1
opt = 2
max = 4
[dims.H]
min = 8
opt = 16
max = 64
[dims.W]
min = 8
opt = 16
max = 64
'''
OUTPUTS = {"IntOfSize": '["B", 4, "H", "?"]', "LoopOverSize": '["B", 4, "H", 1]', "ReshapeToBatch2": '["B", "?"]',
           "PadOdd": '["B", 4, "H", "?"]'}


def _spec_recipe(tmp_path, name):
    text = SPEC_RECIPE.format(name=name, out=OUTPUTS.get(name, '["B", 4, "H", "W"]'))
    return recipe_from_bytes(text.encode(), tmp_path / f"{name}.toml")


@pytest.mark.parametrize("name", sorted(SPECIALISING))
def test_a_specialising_trace_is_refused_with_its_source_line(tmp_path, name):
    recipe = _spec_recipe(tmp_path, name)
    exporters = ["auto", "dynamo"] if name == "ReshapeToBatch2" else ["auto"]
    for exporter in exporters:
        with pytest.raises(ExportRefused) as refused:
            export_onnx(recipe, tmp_path / "out", ExportOptions(exporter=exporter))
        message = str(refused.value)
        assert "\n" not in message
        lines = {site(name), site(name) + 1}  # a loop is named at its body's first line
        assert any(f"specialising_modules.py:{line}" in message for line in lines), message
        kind = {"shape": "specialised to its example shape", "data": "specialised to its example data"}
        assert kind[SPECIALISING[name]] in message, message
        assert not (tmp_path / "out" / name / "model.onnx").exists()
        assert (tmp_path / "out" / f"{name}.export.log").read_text().startswith("# deploykit export log")


def test_a_tracer_warning_that_changes_nothing_does_not_block_the_export(tmp_path):
    recipe = _spec_recipe(tmp_path, "HarmlessWarning")
    result = export_onnx(recipe, tmp_path / "out")
    check = result.manifest["checks"]["specialisation"]
    assert result.exporter == "torchscript" and len(check["tracer_warnings"]) == 1
    assert check["range"]["status"] == "proved" and check["traces_compared"]


def test_a_module_that_rejects_a_declared_size_is_named_as_such(tmp_path):
    """Linear(12, 12) on the last axis only runs at T=12: at another declared T, the user's module is at fault."""
    from .user_modules import TIME_MIX_RECIPE

    recipe = recipe_from_bytes(TIME_MIX_RECIPE.encode(), tmp_path / "fixed.toml")
    with pytest.raises(UserCodeError, match=r"the PyTorch module at B=\d+ T=\d+ raised RuntimeError: .*"
                                            r"user_modules\.py:\d+.*declare"):
        export_onnx(recipe, tmp_path / "out")


# -- the noise floor --------------------------------------------------------------------------------------
def test_fp32_rounding_of_a_deep_network_is_judged_against_pytorchs_own_error():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(1000)
    torch32 = (truth + rng.normal(0, 1e-3, truth.shape)).astype(np.float32)  # PyTorch's own FP32 error ~3e-3
    onnx32 = (truth + rng.normal(0, 1e-3, truth.shape)).astype(np.float32)  # as far from the truth
    strict = Tolerance(1e-4, 1e-4, 0.99999, None)
    assert not compare_output("y", onnx32, torch32, strict).passed  # a fixed atol refuses rounding
    within = compare_output("y", onnx32, torch32, strict, truth)
    assert within.passed and within.floor > 1e-3 and within.error_vs_float64 < 4 * within.floor
    bug = onnx32.copy()
    bug[:10] += 0.5  # a real export bug: far above the floor
    judged = compare_output("y", bug, torch32, strict, truth)
    assert not judged.passed and "x PyTorch's own FP32 error" in judged.failures[0]


def test_cosine_and_snr_are_judged_against_float64_when_pytorch_itself_misses_them():
    """levit_128s's case (here PyTorch's own FP32 output is at cosine ~0.9999 from float64): no FP32 export can
    reach 0.99999 against it; an export as close to float64 as PyTorch is passes, one 5x farther (25x in 1 - cosine,
    14 dB of SNR) fails, though its max abs is within the 16x floor."""
    rng = np.random.default_rng(2)
    truth = rng.standard_normal(4000)
    torch32 = (truth + rng.normal(0, 1e-2, truth.shape)).astype(np.float32)
    tolerance = Tolerance(1e-4, 1e-4, 0.99999, 60.0)
    same = (truth + rng.normal(0, 1e-2, truth.shape)).astype(np.float32)
    assert not compare_output("y", same, torch32, tolerance).passed  # against FP32 alone: refused
    assert compare_output("y", same, torch32, tolerance, truth).passed
    farther = (truth + rng.normal(0, 5e-2, truth.shape)).astype(np.float32)
    judged = compare_output("y", farther, torch32, tolerance, truth)
    assert not judged.passed and judged.error_vs_float64 < 16 * judged.floor  # the max-abs rule alone would pass it
    assert [f.split(" ")[0] for f in judged.failures] == ["cosine", "SNR"]
    assert "PyTorch's own FP32 against float64" in judged.failures[0]


def test_a_failure_near_the_floor_is_named_rounding_not_a_shape_dependent_export():
    from deploykit.export.checks import require_parity
    from deploykit.parity.engine import CaseResult, ParityResult

    rng = np.random.default_rng(1)
    truth = rng.standard_normal(1000)
    torch32 = (truth + rng.normal(0, 1e-6, truth.shape)).astype(np.float32)
    strict = Tolerance(1e-6, 0.0, None, None)
    ill = (truth + rng.normal(0, 3e-5, truth.shape)).astype(np.float32)  # ~30x the floor: rounding, amplified
    bug = torch32.copy()
    bug[:10] += 0.5  # structural: 1e5x the floor
    ok = CaseResult("opt", {"B": 2}, True, [compare_output("y", torch32, torch32, strict, truth)])
    for onnx32, expected in ((ill, "PyTorch's own FP32 rounding error there"), (bug, "so the export is shape-dependent")):
        metrics = compare_output("y", onnx32, torch32, strict, truth)
        assert not metrics.passed
        with pytest.raises(ExportRefused, match=expected):
            require_parity(ParityResult([CaseResult("max", {"B": 4}, False, [metrics]), ok]), "the export")


# -- verify tells data from shape dependence ------------------------------------------------------------
def _planted(tmp_path, name):
    """An ONNX of a specialising module written by plain torch.onnx.export (not by deploykit)."""
    import warnings

    from deploykit.runners.torch_runner import FlatIO

    recipe = _spec_recipe(tmp_path, name)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(FlatIO(recipe.build()).eval(), (torch.ones(2, 4, 16, 16),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "B", 2: "H", 3: "W"}, "y": {0: "B", 2: "H", 3: "W"}})
    (tmp_path / f"{name}.toml").write_text(recipe.text)
    return path, recipe


def test_verify_diagnoses_a_data_dependent_model_as_data_dependent(tmp_path):
    from deploykit.verify import VerifyOptions, verify_onnx

    path, recipe = _planted(tmp_path, "DataBranch")  # traced with mean > 0: wrong whenever the mean is negative
    run = verify_onnx(path, recipe, VerifyOptions(write=False))
    assert not run.passed
    assert any(note.startswith("data-dependent: at ") for note in run.diagnosis), run.diagnosis
    assert not any(note.startswith("shape-dependent") for note in run.diagnosis), run.diagnosis


def test_verify_diagnoses_a_shape_dependent_model_as_shape_dependent(tmp_path):
    from deploykit.verify import VerifyOptions, verify_onnx

    path, recipe = _planted(tmp_path, "Threshold")  # traced at W=16: sigmoid, where PyTorch uses tanh above 48
    run = verify_onnx(path, recipe, VerifyOptions(write=False, seed=1))
    assert not run.passed
    assert any(note.startswith("not data-dependent") for note in run.diagnosis), run.diagnosis
    assert any(note.startswith("shape-dependent export bug") for note in run.diagnosis), run.diagnosis


def test_the_sweep_covers_the_grid_edges_and_seeded_samples(tmp_path):
    recipe = _spec_recipe(tmp_path, "HarmlessWarning")
    cases = {c.label: c.values for c in recipe.sweep(seed=3, edges=True, samples=4)}
    assert cases["edge-low"] == {"B": 2, "H": 9, "W": 9} and cases["edge-high"] == {"B": 3, "H": 63, "W": 63}
    samples = [v for k, v in cases.items() if k.startswith("sample-")]
    assert len(samples) == 4 and all(8 <= s["H"] <= 64 and 1 <= s["B"] <= 4 for s in samples)
    again = {c.label: c.values for c in recipe.sweep(seed=3, edges=True, samples=4)}
    assert again == cases  # the seed decides, nothing else
    assert {c.label: c.values for c in recipe.sweep(seed=3)} == {k: v for k, v in cases.items()
                                                              if not k.startswith(("edge", "sample"))}
