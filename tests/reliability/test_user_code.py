"""Bad input, module class: the user's own code fails (a factory, a constructor, an import, a forward).

Each case: exit code 2 (1 for a refused export), one line naming the user's code, no traceback, and no
artifact written.
"""

import subprocess
import sys
from pathlib import Path

import pytest

DEPLOYKIT = str(Path(sys.executable).parent / "deploykit")

USER_CODE = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.position = nn.Parameter(torch.zeros(1, channels, 16, 16))  # a fixed-size position embedding

    def forward(self, x):
        return self.conv(x) + self.position


def good(channels=4):
    return Block(channels)


def raises():
    raise RuntimeError("no weights found at /models/block.pt")


def returns_none():
    return None


def returns_int():
    return 3


def needs_an_argument(depth):
    return Block()


def bad_type(channels=4):
    return nn.Conv2d(channels, "four", 3)
'''

DIMS = ["--input", "x=B,4,H,W", "--dim", "B=1:2:4", "--dim", "H=8:16:32", "--dim", "W=8:16:64"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-code")
    (folder / "userblock.py").write_text(USER_CODE)
    (folder / "broken.py").write_text("def good(:\n    pass\n")
    (folder / "explodes.py").write_text("raise ImportError('a dependency of explodes is missing')\n")
    return folder


CASES = {
    "factory raises": (["--module", "userblock:raises", *DIMS], 2,
                       "the factory userblock:raises() raised RuntimeError: no weights found at /models/block.pt at "),
    "factory returns None": (["--module", "userblock:returns_none", *DIMS], 2, "returned NoneType, not a torch.nn.Module"),
    "factory returns an int": (["--module", "userblock:returns_int", *DIMS], 2, "returned int, not a torch.nn.Module"),
    "missing constructor argument": (["--module", "userblock:needs_an_argument", *DIMS], 2,
                                     "missing 1 required positional argument: 'depth'"),
    "unknown constructor argument": (["--module", "userblock:good", *DIMS, "--args", '{"colour": 3}'], 2,
                                     "userblock:good takes no argument 'colour' (it takes: channels)"),
    "constructor argument of the wrong type": (["--module", "userblock:bad_type", *DIMS], 2,
                                               "the factory userblock:bad_type() raised TypeError"),
    "syntax error in the module": (["--module", "broken:good", *DIMS], 2, "importing 'broken' (for broken:good) raised SyntaxError"),
    "import-time error": (["--module", "explodes:good", *DIMS], 2,
                          "importing 'explodes' (for explodes:good) raised ImportError: a dependency of explodes is missing"),
    "forward fails at a declared size": (["--module", "userblock:good", *DIMS], 2,
                                         "raised RuntimeError: The size of tensor a"),  # and: declare those axes static
    "not a module path": (["--module", "userblock", *DIMS], 2, "must look like package.module:factory"),
}


# each case is a real `deploykit` process (~2.5 s of imports): the fast tier keeps one per kind of failure
FAST = {"factory raises", "syntax error in the module", "forward fails at a declared size", "not a module path"}


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in sorted(CASES)])
def test_user_code_failures_are_one_line(project, name):
    args, code, message = CASES[name]
    done = subprocess.run([DEPLOYKIT, "export", *args, "--out", str(project / "out")], cwd=project,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not list((project / "out").glob("*/model.onnx"))


def test_list_reports_a_recipe_whose_module_cannot_be_built_and_lists_the_others(project, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "fine.toml").write_text('module = "se"\n[[inputs]]\nname = "x"\nshape = ["B", 64, 8, 8]\n'
                                       '[[outputs]]\nname = "y"\nshape = ["B", 64, 8, 8]\n'
                                       '[dims.B]\nmin = 1\nopt = 2\nmax = 4\n')
    (recipes / "broken.toml").write_text((recipes / "fine.toml").read_text().replace(
        'module = "se"', 'factory = "userblock:raises"'))
    done = subprocess.run([DEPLOYKIT, "list", "--recipes", str(recipes), "--json"], cwd=project, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    import json

    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["fine"]["parameters"] > 0
    assert "raised RuntimeError: no weights found" in rows["broken"]["error"]
