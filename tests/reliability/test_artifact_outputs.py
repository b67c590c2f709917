"""Bad-input suite, what deploykit writes from an artifact it does not trust (issue 24): a Triton model folder
that already holds another version, concurrent package records, verify.json's record of the model it checked,
a ``plots`` symlink, an earlier verify.json run cut short. Each case asserts the exit code (one line and no
traceback for a refusal) and that no file outside the artifact (or the repository it was asked to write) changed.
"""

import json

import pytest

from deploykit.artifact import Artifact
from deploykit.package import triton
from deploykit.package.triton import package_triton, read_config

from .checks import assert_one_line_error, cli, tree
from .untrusted import se  # noqa: F401 (the fixture)


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


# -- Triton: the version deploykit wrote is the one served -------------------------------------------
def test_a_stale_version_folder_is_not_what_triton_serves(se, tmp_path):
    stale = tmp_path / "repo" / "se" / "2"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"an older model")
    before = tree(tmp_path / "user")
    result = cli("package", "se", "--triton", tmp_path / "repo", "--out", se.parent)
    assert result.exit_code == 0, result.output
    config = read_config(tmp_path / "repo" / "se" / "config.pbtxt")
    assert list(config.version_policy.specific.versions) == [1]  # not Triton's default, the latest (2/)
    assert (stale / "model.onnx").read_bytes() == b"an older model" and tree(tmp_path / "user") == before


def test_every_triton_config_names_its_version(se, tmp_path):
    model = package_triton(se, tmp_path / "repo")
    assert "version_policy" in model.config_text and "versions: 1" in model.config_text


def test_package_keeps_records_a_concurrent_run_wrote(se, tmp_path, monkeypatch):
    """Run B opened the artifact before run A recorded repo1: B re-reads the record under the lock and keeps A's."""
    stale = Artifact.open(se)
    package_triton(se, tmp_path / "repo1")
    monkeypatch.setattr(triton.Artifact, "open", classmethod(lambda cls, folder: stale))
    package_triton(se, tmp_path / "repo2")
    monkeypatch.undo()
    record = _manifest(se)["triton"]
    assert {str((tmp_path / r / "se").resolve()) for r in ("repo1", "repo2")} <= set(record)
    again = cli("package", "se", "--triton", tmp_path / "repo1", "--out", se.parent)  # its own files: no --force
    assert again.exit_code == 0, again.output


def test_package_into_a_folder_a_concurrent_run_just_wrote_needs_no_force(se, tmp_path, monkeypatch):
    stale = Artifact.open(se)
    package_triton(se, tmp_path / "repo", max_batch=4)
    monkeypatch.setattr(triton.Artifact, "open", classmethod(lambda cls, folder: stale))
    package_triton(se, tmp_path / "repo")  # replaces the config the other run wrote, recognised as deploykit's
    assert read_config(tmp_path / "repo" / "se" / "config.pbtxt").max_batch_size == 8


def test_a_config_the_user_wrote_is_still_refused(se, tmp_path):
    folder = tmp_path / "repo" / "se"
    folder.mkdir(parents=True)
    (folder / "config.pbtxt").write_text('name: "se"\n')
    before = tree(tmp_path)
    assert_one_line_error(cli("package", "se", "--triton", tmp_path / "repo", "--out", se.parent),
                          "config.pbtxt exists and was not written by deploykit")
    assert tree(tmp_path) == before


# -- verify.json ------------------------------------------------------------------------------------
def test_verify_json_records_the_model_it_checked(se):
    assert cli("verify", "se", "--out", se.parent).exit_code == 0
    run = json.loads((se / "verify.json").read_text())["runs"]["ort-cpu/fp32"]
    assert run["model_sha256"] == _manifest(se)["files"]["model.onnx"]
    assert run["model_sha256"] in (se / "report.md").read_text()


def test_a_replaced_model_makes_the_old_passed_stale_in_the_report(se):
    assert cli("verify", "se", "--out", se.parent).exit_code == 0
    data = json.loads((se / "verify.json").read_text())
    data["runs"]["ort-cpu/fp32"]["model_sha256"] = "0" * 64  # as after a re-export: another model was checked
    data["runs"]["ref/fp32"] = data["runs"].pop("ort-cpu/fp32")
    (se / "verify.json").write_text(json.dumps(data))
    assert cli("verify", "se", "--out", se.parent, "--force").exit_code == 0
    report = (se / "report.md").read_text()
    assert "ref/fp32: PASSED (stale" in report and "ort-cpu/fp32: PASSED\n" in report


def test_a_plots_symlink_does_not_send_the_plots_outside(se, tmp_path):
    (se / "plots").symlink_to(tmp_path / "user", target_is_directory=True)
    before = tree(tmp_path / "user")
    assert_one_line_error(cli("verify", "se", "--out", se.parent), "plots is a symlink")
    assert tree(tmp_path / "user") == before and not (se / "verify.json").exists()


@pytest.mark.parametrize("run", [{"name": "se", "passed": True}, {"cases": "none"}, {}])
def test_an_earlier_run_cut_short_does_not_traceback(run, se):
    assert cli("verify", "se", "--out", se.parent).exit_code == 0
    data = json.loads((se / "verify.json").read_text())
    data["runs"]["ort-cuda/fp32"] = run
    (se / "verify.json").write_text(json.dumps(data))
    result = cli("verify", "se", "--out", se.parent, "--force")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "ort-cuda/fp32: unreadable record" in (se / "report.md").read_text()


def test_a_run_with_no_cases_does_not_traceback(se):
    assert cli("verify", "se", "--out", se.parent).exit_code == 0
    data = json.loads((se / "verify.json").read_text())
    data["runs"]["ort-cuda/fp32"] = {**data["runs"]["ort-cpu/fp32"], "cases": []}
    (se / "verify.json").write_text(json.dumps(data))
    result = cli("verify", "se", "--out", se.parent, "--force")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "ort-cuda/fp32" in (se / "report.md").read_text()
