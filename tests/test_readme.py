"""The README's quick start stays true: its commands are the ones CI and users run."""

import re

from .conftest import REPO


def _command(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n```", text)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_both_quick_start_commands_install_torch_first_then_the_package():
    for marker in ("main-command", "test-command"):
        steps = _command(marker).split(" && ")
        assert steps[0] == "pip install torch==2.13.0"
        assert steps[1].startswith('pip install -e ".[')


def test_main_command_exports_and_verifies_a_zoo_module():
    steps = _command("main-command").split(" && ")
    assert any(s.startswith("deploykit export ") for s in steps)
    assert any(s.startswith("deploykit verify ") for s in steps)


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "test-command" in ci and "python -m pytest" in _command("test-command")


def test_the_python_api_example_runs_as_written(tmp_path, monkeypatch):
    """The README's notebook example, executed as it stands (in a temporary folder: it writes artifacts/gate)."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- python-api -->\s*```python\n(.+?)\n```", text, re.S)
    assert match, "README has no python-api block"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    assert namespace["run"].passed and namespace["run"].cases[-1].shape == {"B": 3, "H": 40, "W": 56}
    assert set(namespace["outputs"]) == {"out", "aux"} and namespace["outputs"]["aux"][1] is None
