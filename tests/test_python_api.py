"""Issue 23: deploykit.export / deploykit.verify on modules as users hold them (defined in a notebook, any output
structure, list and keyword inputs), and artifacts that carry their own PyTorch reference."""

import collections
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import deploykit
import deploykit.runtime
from deploykit.errors import DeployKitError

DIMS = {"B": "1:2:4", "H": "8:16:32", "W": "8:16:32"}
OUTSIDE = {"B": 3, "H": 13, "W": 29}  # in range, not a shape of the sweep


DEPLOYKIT = str(Path(sys.executable).with_name("deploykit"))  # the installed console script, in another process


def _cli(*args, cwd=None):
    return subprocess.run([DEPLOYKIT, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.slow  # the full suite: verify in a subprocess (~8 s); the fast tier keeps the in-process API tests
def test_a_module_defined_in_a_test_verifies_in_another_process_without_its_code(tmp_path):
    """The issue's must-show: a module that cannot be imported (defined here, as in a notebook), exported with
    deploykit.export; `deploykit verify NAME` in a subprocess passes against the stored reference; onnxruntime
    equals the module at an in-range shape outside the sweep."""

    class NotebookNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.head = nn.Conv2d(8, 2, 1)

        def forward(self, x):
            return self.head(torch.relu(self.bn(self.conv(x))))

    torch.manual_seed(0)
    model = NotebookNet()
    model.bn.running_mean.uniform_(-0.5, 0.5)
    model.bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = deploykit.export(model, {"x": "B,3,H,W"}, DIMS, name="notebook", out=tmp_path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's module untouched
    manifest = result.manifest
    assert manifest["weights"]["source"] == "module" and manifest["reference"]["file"] == "reference.npz"
    assert len(manifest["reference"]["cases"]) >= 5 and not manifest["reference"]["left_out"]

    verified = _cli("verify", "notebook", "--out", tmp_path, "--json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    run = json.loads(verified.stdout)["runs"][0]
    assert run["passed"] and run["reference"] == "torch (stored at export)"
    assert {c["label"] for c in run["cases"]} >= {"min", "opt", "max"}

    x = torch.randn(OUTSIDE["B"], 3, OUTSIDE["H"], OUTSIDE["W"])
    with torch.inference_mode():
        expected = model(x).numpy()
    got = deploykit.runtime.load(tmp_path / "notebook", "ort-cpu").run({"x": x.numpy()})["output"]
    assert np.abs(got - expected).max() < 1e-5

    # a new shape needs the module: one line without it, checked with it
    refused = _cli("verify", "notebook", "--out", tmp_path, "--shape", "B=3,H=13,W=29", cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "needs the module" in refused.stderr and "model=" in refused.stderr
    with_module = deploykit.verify("notebook", out=tmp_path, model=model, shapes=[OUTSIDE], write=False)
    assert with_module.passed and with_module.cases[-1].shape == OUTSIDE

    # a module trained further since is not the exported one
    with torch.no_grad():
        model.head.bias.add_(1.0)
    with pytest.raises(DeployKitError, match="'head.bias' differs from weights.pt"):
        deploykit.verify("notebook", out=tmp_path, model=model, shapes=[OUTSIDE], write=False)


Pair = collections.namedtuple("Pair", "low high")


@dataclasses.dataclass
class Output:  # like Hugging Face's ModelOutput: fields, some None
    logits: torch.Tensor
    hidden: torch.Tensor | None = None
    extra: tuple = ()


class Structured(nn.Module):
    """Every structure of the issue at once: a dict, a namedtuple, a dataclass with a None field, a nested list
    with a None, and (call = "kwargs") keyword inputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image, mask):
        f = self.conv(image) * mask
        return {"out": f, "aux": [f.mean((2, 3)), None, (f.amax(1),)],
                "pair": Pair(f[:, :2], f[:, 2:]), "head": Output(f.sum(1), None, (f.min(),))}


def test_any_output_structure_is_named_by_its_path_and_given_back_by_the_runtime(tmp_path):
    torch.manual_seed(0)
    model = Structured().eval()
    result = deploykit.export(model, {"image": "B,3,H,W", "mask": "B,1,H,W"}, DIMS, name="structured",
                              out=tmp_path, call="kwargs")
    names = [o["name"] for o in result.manifest["outputs"]]
    assert names == ["out", "aux.0", "aux.2.0", "pair.low", "pair.high", "head.logits", "head.extra.0"]
    assert result.manifest["outputs"][-1]["dims"] == []  # f.min(): a scalar

    image, mask = torch.randn(3, 3, 13, 29), (torch.rand(3, 1, 13, 29) > 0.5).float()
    with torch.inference_mode():
        expected = model(image=image, mask=mask)
    session = deploykit.runtime.load(tmp_path / "structured", "ort-cpu")
    got = session.forward({"image": image.numpy(), "mask": mask.numpy()})
    assert set(got) == {"out", "aux", "pair", "head"} and got["aux"][1] is None
    assert type(got["pair"]).__name__ == "Pair" and got["pair"]._fields == ("low", "high")
    assert type(got["head"]).__name__ == "Output" and got["head"].hidden is None
    pairs = [(got["out"], expected["out"]), (got["aux"][0], expected["aux"][0]), (got["aux"][2][0], expected["aux"][2][0]),
             (got["pair"].low, expected["pair"].low), (got["pair"].high, expected["pair"].high),
             (got["head"].logits, expected["head"].logits), (got["head"].extra[0], expected["head"].extra[0])]
    for actual, want in pairs:
        assert actual.shape == tuple(want.shape) and np.abs(actual - want.numpy()).max() < 1e-5
    assert deploykit.verify("structured", out=tmp_path, write=False).passed


class ListInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

    def forward(self, images):
        return self.a(images[0]) + nn.functional.interpolate(self.b(images[1]), scale_factor=2.0)


@pytest.mark.slow
def test_a_list_input(tmp_path):
    torch.manual_seed(0)
    model = ListInput().eval()
    result = deploykit.export(model, {"big": "B,3,2*H,2*W", "small": "B,3,H,W"}, DIMS, name="listin", out=tmp_path,
                              call="list")
    assert result.manifest["outputs"][0]["dims"] == ["B", 4, "2*H", "2*W"]
    assert deploykit.verify("listin", out=tmp_path, write=False).passed


class DataDependent(nn.Module):
    def forward(self, x):
        scores = x.mean((1, 2, 3))
        return x, scores[scores > 0]  # NMS-like: how many survive depends on the data


class NumberOut(nn.Module):
    def forward(self, x):
        return {"y": x * 2, "scale": 2.0}


@pytest.mark.parametrize("module, message", [
    (DataDependent(), "the size of output 'output_1' depends on the data"),
    (NumberOut(), "the output at scale is a float"),
])
def test_outputs_deploykit_cannot_take_are_refused_in_one_line_naming_them(module, message, tmp_path):
    with pytest.raises(DeployKitError) as caught:
        deploykit.export(module, {"x": "B,3,H,W"}, DIMS, name="bad", out=tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "bad").exists()


def test_the_python_api_refuses_bad_arguments_in_one_line(tmp_path):
    for call, message in [
        (lambda: deploykit.export("not a module", {"x": "B"}), "is a recipe"),
        (lambda: deploykit.export(object(), {"x": "B"}), "takes an nn.Module"),
        (lambda: deploykit.export(nn.Identity(), "B,3,H,W", DIMS), "inputs must be a dict"),
        (lambda: deploykit.export(nn.Identity(), {"x": "B,3,H,W"}, {"B": "1:2:4"}), "no --dim gives its range"),
        (lambda: deploykit.export(nn.Identity(), {"x": "B"}, {"B": "1:2:4"}, call="dict"), "call must be one of"),
    ]:
        with pytest.raises(DeployKitError, match=message):
            call()


FACTORY = '''
import torch
from torch import nn

def build(width=4, weights="download"):
    if weights is not None:
        raise RuntimeError("would download weights")
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1)).eval()
'''


def test_args_take_json_null(tmp_path, monkeypatch):
    from .reliability.checks import cli

    (tmp_path / "nullnet.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)  # the user's folder: nullnet.py is importable from here, as with `python -m`
    monkeypatch.syspath_prepend(str(tmp_path))
    done = cli("export", "--module", "nullnet:build", "--input", "x=B,3,H,W", "--dim", "B=1:2:4", "--dim", "H=8:16:32",
               "--dim", "W=8:16:32", "--args", '{"width": 6, "weights": null}', "--out", "out")
    assert done.exit_code == 0, done.output
    recipe = (tmp_path / "out" / "build" / "recipe.toml").read_text()
    assert 'args_json = "{\\"width\\": 6, \\"weights\\": null}"' in recipe
    state = torch.load(tmp_path / "out" / "build" / "weights.pt")
    assert state["0.weight"].shape[0] == 6
    again = cli("verify", "build", "--out", "out", "--module", "nullnet:build", "--seed", "1")
    assert again.exit_code == 0, again.output  # the module rebuilt from the JSON arguments
    sys.modules.pop("nullnet", None)
