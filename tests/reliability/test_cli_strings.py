"""CLI input that used to end in a traceback or a wrong line (issue 24), and the README agreeing with the tool.

`--args` nested ~900 deep, names with an emoji or NaN, a 4088-character path, a folder name the locale cannot
encode, a full TMPDIR: one clear line each, non-zero exit (or, where the input is fine, a good export). The
extras the README names exist and hold what its snippets import; install hints name the same extras.
"""

import errno
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .checks import assert_one_line_error, cli, tree

REPO = Path(__file__).parents[2]
DEPLOYKIT = str(Path(sys.executable).parent / "deploykit")
DIMS = ["--input", "x=B,4,H,W", "--dim", "B=1:1:2", "--dim", "H=8:16:32", "--dim", "W=8:16:32"]
MODULE = "from torch import nn\n\n\ndef make(**kwargs):\n    return nn.Conv2d(4, 4, 3, padding=1)\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "anyargs.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _export(*args):
    return cli("export", "--module", "anyargs:make", *DIMS, "--name", "net", *args)


@pytest.mark.parametrize("depth", [33, 900, 5000])
def test_args_nested_too_deep_is_one_line(project, depth):
    result = _export("--args", '{"a": ' + "[" * depth + "]" * depth + "}", "--out", "out")
    assert_one_line_error(result, "--args is nested too deeply (at most 32 levels)")
    assert tree(project / "out") == {}


# args the recipe.toml must hold as given (they were "recipe.toml: not valid TOML")
ARGS = {
    "an emoji key": ('{"😀": 1}', {"😀": 1}),
    "an emoji value": ('{"label": "cat 🐈"}', {"label": "cat 🐈"}),
    "NaN": ('{"eps": NaN}', None),
    "Infinity": ('{"clip": Infinity, "floor": -Infinity}', {"clip": float("inf"), "floor": float("-inf")}),
    "quotes, backslashes, DEL and a tab": ('{"s": "a\\"b\\\\c\\u007f\\td"}', {"s": 'a"b\\c\x7f\td'}),
}


@pytest.mark.parametrize("case", list(ARGS))
def test_args_with_unusual_names_and_numbers_reach_the_recipe(project, case):
    text, want = ARGS[case]
    result = _export("--args", text, "--out", "out")
    assert result.exit_code == 0, result.output
    args = tomllib.loads((project / "out" / "net" / "recipe.toml").read_text(encoding="utf-8"))["args"]
    if want is None:
        assert args["eps"] != args["eps"]  # NaN
    else:
        assert args == want


def test_a_lone_surrogate_in_args_is_one_line(project):
    assert_one_line_error(_export("--args", '{"a": "\\ud800"}', "--out", "out"), "holds a lone surrogate")
    assert tree(project / "out") == {}


@pytest.mark.parametrize("length", [4088, 8000])
def test_a_path_longer_than_the_system_takes_is_one_line(project, length):
    out = "/".join(["y" * 200] * 41)[:length]
    line = assert_one_line_error(_export("--out", out), "File name too long")
    assert len(line) < 400  # the path is shortened in the line, not printed whole
    assert not list(project.glob("*.onnx"))


def test_a_path_component_over_255_bytes_is_one_line(project):
    assert_one_line_error(_export("--out", "z" * 300), "File name too long")


def test_a_full_tmpdir_names_the_temporary_folder(project, monkeypatch, tmp_path_factory):
    """A library's temporary file on a full disk: the OSError names no file, the line names TMPDIR."""
    import tempfile

    temporary = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", full)
    line = assert_one_line_error(_export("--out", "out"), "No space left on device")
    assert f"temporary folder {temporary}" in line and "TMPDIR" in line
    assert not (project / "out" / "net").exists()  # no empty artifact folder either


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0",
                                                                  "PYTHONCOERCECLOCALE": "0"}])
@pytest.mark.slow
def test_a_folder_name_the_locale_cannot_encode(project, env):
    out = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: not UTF-8, held as a surrogate escape
    done = subprocess.run([DEPLOYKIT, "export", "--module", "anyargs:make", *DIMS, "--name", "net", "--out", out],
                          cwd=project, capture_output=True, timeout=240, env={**os.environ, **env},
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr + done.stdout
    assert (project / out / "net" / "model.onnx").is_file()


# -- the README and the tool agree ----------------------------------------------------------------
def _extras() -> dict[str, list[str]]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_serve_extra_holds_the_http_client_the_readme_imports():
    readme = (REPO / "README.md").read_text()
    assert "import tritonclient.http" in readme
    assert any(r.startswith("tritonclient[") and "http" in r.split("]")[0] for r in _extras()["serve"])


def test_the_readme_names_the_extra_package_triton_needs():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("To move to Triton"):readme.index("tritonserver --model-repository")]
    assert '.[cpu,triton]"' in section
    assert any(r.startswith("tritonclient[") and "grpc" in r for r in _extras()["triton"])


def test_every_install_hint_names_an_extra_that_exists():
    import re

    extras, hints = _extras(), []
    for path in (REPO / "deploykit").rglob("*.py"):
        hints += re.findall(r"deploykit\[([a-z0-9,-]+)\]", path.read_text())
    hints += re.findall(r'pip install -e "\.\[([a-z0-9,-]+)\]"', (REPO / "README.md").read_text())
    assert hints
    for hint in hints:
        for extra in hint.split(","):
            assert extra in extras, (hint, sorted(extras))


def test_package_triton_without_tritonclient_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tritonclient.grpc", None)  # as if not installed (even if imported before)
    result = cli("package", "net", "--triton", "repo")
    assert_one_line_error(result, "pip install 'deploykit[triton]'")


def test_serve_help_names_the_serve_extra_for_the_client():
    result = cli("serve", "--help")
    assert result.exit_code == 0 and "deploykit[serve]" in result.output
