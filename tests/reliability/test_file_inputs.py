"""Bad-input suite, file class (issue 13): the files a user hands deploykit, or leaves where it writes.

Manifests that are JSON but not deploykit's, a verify.json/report.md/plot the user owns, checkpoints that are not
state dicts or that ``weights_only`` refuses, a weights.pt swapped for a pickle that runs code. Each case asserts
exit 2, one line, no traceback, and that the folder is byte-for-byte what it was (nothing lost or half-written).
Every case works on a private copy of the one shared ``se`` export.
"""

import json
import os
import pickle
import shutil

import pytest
import torch

from deploykit.artifact import Artifact
from deploykit.export.weights import seeded_model
from deploykit.recipe import find_recipe
from deploykit.store.ownership import Ownership
from deploykit.store.writer import artifact_step

from ..artifact_cache import artifact_copy
from ..conftest import RECIPES
from .checks import assert_one_line_error, cli, modes, tree


@pytest.fixture
def se(tmp_path_factory, tmp_path):
    return artifact_copy(tmp_path_factory, "se", tmp_path / "out")


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder, data):
    (folder / "manifest.json").write_text(data if isinstance(data, str) else json.dumps(data))


def _drop(key):
    def edit(manifest):
        manifest.pop(key)
        return manifest
    return edit


def _set(key, value):
    def edit(manifest):
        manifest[key] = value
        return manifest
    return edit


def _dims_without_min(manifest):
    manifest["dims"]["H"].pop("min")
    return manifest


MANIFESTS = {
    "a_list": (lambda m: "[1, 2, 3]", "is not a JSON object (it holds a list)"),
    "a_string": (lambda m: '"manifest"', "is not a JSON object (it holds a str)"),
    "not_json": (lambda m: "{'format': 1", "is not readable JSON"),
    "empty": (lambda m: "", "is not readable JSON"),
    "deeply_nested": (lambda m: "[" * 100000 + "]" * 100000, "is not readable JSON"),
    "other_format": (_set("format", 99), "is not a deploykit manifest (format 99"),
    "files_a_string": (_set("files", "oops"), "'files' must be a JSON object, got str"),
    "files_not_hashes": (_set("files", {"model.onnx": 5}), "'files' must map file names to sha256 strings"),
    "no_inputs": (_drop("inputs"), "no 'inputs'"),
    "no_recipe": (_drop("recipe"), "no 'recipe'"),
    "inputs_without_dims": (_set("inputs", [{"name": "x"}]), "every 'inputs' entry needs a name and a dims list"),
    "dims_without_min": (_dims_without_min, "dims.H needs an integer value, or integer min and max"),
    "name_escapes": (_set("name", "../../escaped"), "name '../../escaped' is not a valid name"),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
@pytest.mark.parametrize("command", ["verify", "package"])
def test_a_malformed_manifest_is_one_line(case, command, se, tmp_path):
    edit, expected = MANIFESTS[case]
    _write_manifest(se, edit(_manifest(se)))
    before = tree(se)
    args = ["verify", "se"] if command == "verify" else ["package", "se", "--triton", tmp_path / "repo"]
    assert_one_line_error(cli(*args, "--out", se.parent), expected)
    assert tree(se) == before and not (tmp_path / "repo" / "se").exists()


@pytest.mark.parametrize("case", ["files_a_string", "a_list"])
def test_export_over_a_malformed_manifest_asks_for_force(case, se):
    edit, _ = MANIFESTS[case]
    _write_manifest(se, edit(_manifest(se)))
    before = tree(se)
    assert_one_line_error(cli("export", "se", "--out", se.parent), "was not written by deploykit; pass --force")
    assert tree(se) == before


# -- verify's own files (cause 2) ------------------------------------------------------------------
USER_FILES = {
    "a_report_of_the_users": ("report.md", b"# my notes\n", "report.md exists and was not written by deploykit"),
    "a_plot_of_the_users": ("plots/ort-cpu-fp32-y.png", b"\x89PNG my figure", "was not written by deploykit"),
    "a_foreign_verify_json": ("verify.json", b'{"runs": 1}', "verify.json exists and was not written by deploykit verify"),
    "a_verify_json_list": ("verify.json", b"[]", "verify.json exists and was not written by deploykit verify"),
    "a_verify_json_garbage": ("verify.json", b"\x00\x01", "verify.json exists and was not written by deploykit verify"),
}


def _clear_results(folder):
    for name in ("verify.json", "report.md", "plots/ort-cpu-fp32-y.png"):
        (folder / name).unlink(missing_ok=True)


@pytest.mark.parametrize("case", sorted(USER_FILES))
def test_verify_does_not_overwrite_what_it_did_not_write(case, se):
    _clear_results(se)
    name, data, expected = USER_FILES[case]
    (se / name).parent.mkdir(exist_ok=True)
    (se / name).write_bytes(data)
    before = tree(se)
    line = assert_one_line_error(cli("verify", "se", "--out", se.parent), expected)
    assert "pass --force" in line
    assert tree(se) == before


def test_verify_replaces_its_own_files_refuses_edited_ones_and_force_overrides(se):
    _clear_results(se)
    assert cli("verify", "se", "--out", se.parent).exit_code == 0
    assert cli("verify", "se", "--out", se.parent, "--seed", "1").exit_code == 0  # its own files: replaced
    (se / "report.md").write_text((se / "report.md").read_text() + "\nmy annotation\n")
    before = tree(se)
    assert_one_line_error(cli("verify", "se", "--out", se.parent), "report.md exists and was modified since")
    assert tree(se) == before
    assert cli("verify", "se", "--out", se.parent, "--force").exit_code == 0
    assert "my annotation" not in (se / "report.md").read_text()


# -- checkpoints and weights (cause 5) -------------------------------------------------------------
class NotAllowed:
    """A class weights_only=True refuses to unpickle."""


class RunsCode:
    """Unpickling this would run a command (it must never be unpickled)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _checkpoint(path, kind):
    model = seeded_model(find_recipe("se", RECIPES))
    if kind == "a_list":
        torch.save([1, 2, 3], path)
    elif kind == "a_tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "int_keys":
        torch.save({1: torch.zeros(3)}, path)
    elif kind == "a_class_weights_only_refuses":
        torch.save({"net": NotAllowed()}, path)
    elif kind == "garbage":
        path.write_bytes(b"not a torch file at all")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "another_modules_weights":
        torch.save(seeded_model(find_recipe("cbam", RECIPES)).state_dict(), path)
    elif kind == "wrong_shapes":
        torch.save({k: torch.zeros(1) for k in model.state_dict()}, path)
    elif kind == "missing":
        pass
    return path


CHECKPOINTS = {
    "a_list": "is not a state dict (it holds a list)",
    "a_tensor": "is not a state dict (it holds a Tensor)",
    "int_keys": "is not a state dict (it holds a dict)",
    "a_class_weights_only_refuses": "cannot be read safely (weights_only)",
    "garbage": "cannot be read safely (weights_only)",
    "empty": "cannot be read safely (weights_only)",
    "another_modules_weights": "does not fit the module",
    "wrong_shapes": "does not fit the module: size mismatch",
    "missing": "does not exist",
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINTS))
def test_a_bad_checkpoint_is_one_line_and_writes_nothing(kind, se, tmp_path):
    before = tree(se)
    checkpoint = _checkpoint(tmp_path / "ckpt.pt", kind)
    assert_one_line_error(cli("export", "se", "--out", se.parent, "--checkpoint", checkpoint), CHECKPOINTS[kind])
    assert tree(se) == before


def test_weights_pt_that_would_run_code_is_refused_and_never_run(se, tmp_path):
    marker = tmp_path / "ran"
    with open(se / "weights.pt", "wb") as handle:
        pickle.dump(RunsCode(marker), handle, protocol=2)
    with artifact_step(Artifact.open(se), force=True) as step:  # recorded, as if the manifest had been edited to match
        step.write("weights.pt", (se / "weights.pt").read_bytes())
    before = tree(se)
    # --seed 1: inputs export stored no PyTorch output for, so verify loads the module with weights.pt
    assert_one_line_error(cli("verify", "se", "--seed", "1", "--out", se.parent), "the artifact's weights")
    assert not marker.exists()
    assert tree(se) == before


def test_weights_pt_swapped_behind_the_manifest_is_refused(se):
    torch.save(seeded_model(find_recipe("se", RECIPES), seed=5).state_dict(), se / "weights.pt")
    before = tree(se)
    assert_one_line_error(cli("verify", "se", "--out", se.parent), "weights.pt does not match the sha256 in its manifest")
    assert tree(se) == before


# -- other files deploykit records --------------------------------------------------------------------
def test_a_calibration_json_of_the_users_is_not_overwritten(se):
    (se / "calibration.json").write_text('{"mine": true}')
    before = tree(se)
    assert_one_line_error(cli("calibrate", "se", "--synthetic", "4", "--out", se.parent),
                          "calibration.json exists and was not written by deploykit; pass --force")
    assert tree(se) == before


def test_a_triton_config_of_the_users_is_not_overwritten(se, tmp_path):
    config = tmp_path / "repo" / "se" / "config.pbtxt"
    config.parent.mkdir(parents=True)
    config.write_text('name: "se"\n')
    before = tree(se)
    assert_one_line_error(cli("package", "se", "--triton", tmp_path / "repo", "--out", se.parent),
                          "config.pbtxt exists and was not written by deploykit")
    assert config.read_text() == 'name: "se"\n' and tree(se) == before


def test_files_deploykit_wrote_for_an_earlier_export_stay_recognised(se, tmp_path):
    with artifact_step(Artifact.open(se)) as step:  # as bench records its results
        step.write("bench.json", b"{}")
        step.record("bench", {})
    checkpoint = tmp_path / "new.pt"
    torch.save(seeded_model(find_recipe("se", RECIPES), seed=1).state_dict(), checkpoint)
    assert cli("export", "se", "--out", se.parent, "--checkpoint", checkpoint).exit_code == 0
    artifact = Artifact.open(se)
    assert "bench.json" not in artifact.manifest["files"]  # it belongs to the old model, not to this artifact
    assert Ownership.of(artifact.manifest).known("bench.json") == [artifact.manifest["superseded"]["bench.json"]]


# -- modes (cause 3) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, file_mode, dir_mode, verify", [(0o022, 0o644, 0o755, False), (0o077, 0o600, 0o700, True)])
def test_files_and_folders_get_the_users_umask(umask, file_mode, dir_mode, verify, se, tmp_path):
    _clear_results(se)
    shutil.rmtree(se / "plots", ignore_errors=True)
    previous = os.umask(umask)
    try:
        assert cli("package", "se", "--triton", tmp_path / "repo", "--out", se.parent).exit_code == 0
        assert not verify or cli("verify", "se", "--out", se.parent).exit_code == 0
    finally:
        os.umask(previous)
    written = {**{f"repo/{k}": v for k, v in modes(tmp_path / "repo" / "se").items()},
               **{f"se/{k}": v for k, v in modes(se).items()
                  if k in ("manifest.json", "verify.json", "report.md", "plots", "plots/ort-cpu-fp32-y.png")}}
    folders = {"repo/.", "repo/1"} | ({"se/plots"} if verify else set())
    assert len(written) == (9 if verify else 5), written
    assert {k: v for k, v in written.items() if k in folders} == dict.fromkeys(folders, dir_mode)
    assert {k: v for k, v in written.items() if k not in folders} == dict.fromkeys(set(written) - folders, file_mode)
