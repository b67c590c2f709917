"""Bad-input suite, fault class (issue 13): SIGKILL at every write step of an export, and full disks.

The kill cases run the real ``deploykit export se --checkpoint new.pt`` over an existing artifact (the old one, seeded
weights) in a subprocess that is killed at each step that changes a file under --out (tests/reliability/faults.py:
the process forks before each step and the child is SIGKILLed there, a write cut in half first). What each kill
leaves must, once any deploykit command has looked at the folder, be byte-for-byte the old artifact or the new
one; and ``deploykit export`` run again must succeed without --force and give the new one.

The full-disk cases inject ENOSPC into every call that needs space under the folder (or fill a real tmpfs, as
root): one line, exit 2, and the previous files intact.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deploykit.artifact import Artifact
from deploykit.export.weights import seeded_model
from deploykit.recipe import find_recipe
from deploykit.store.transaction import STAGE_PREFIX

from ..artifact_cache import artifact_copy
from ..conftest import RECIPES
from .checks import assert_one_line_error, cli, modes, tree
from .faults import injected

FAULTS = Path(__file__).with_name("faults.py")
UMASK = 0o027


def _manifest_free(folder: Path) -> dict:
    """The artifact's files without the records of which run wrote them: the manifest's "command", and
    export.log (its times), whose presence is still compared but not its content or recorded sha256."""
    import json

    files = tree(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("command", None)
    if "export.log" in manifest.get("files", {}):
        manifest["files"]["export.log"] = files["export.log"] = "a run's log"
    files["manifest.json"] = json.dumps(manifest, sort_keys=True)
    return files


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """(old tree, new tree, {step: (description, folder the kill left)}, checkpoint) for every step of one export."""
    root = tmp_path_factory.mktemp("kill-each")
    work = root / "work"
    artifact_copy(tmp_path_factory, "se", work)
    old = tree(work / "se")
    checkpoint = root / "new.pt"
    torch.save(seeded_model(find_recipe("se", RECIPES), seed=1).state_dict(), checkpoint)
    crash = root / "crash"
    crash.mkdir()
    steps_file = root / "steps.txt"
    done = subprocess.run(
        [sys.executable, str(FAULTS), "--watch", str(work), "--kill-each", str(crash), "--count-to", str(steps_file),
         "--", "export", "se", "--out", str(work), "--checkpoint", str(checkpoint), "--reference-mb", "4"],
        capture_output=True, text=True, umask=UMASK, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = steps_file.read_text().splitlines()
    assert len(steps) >= 20, steps  # stage 3 files (open, write, fsync each), journal, commit, publish 3, clean up
    left = {n: (steps[n - 1], crash / str(n) / "se") for n in range(1, len(steps) + 1)}
    return old, tree(crash / "done" / "se"), left, checkpoint, crash / "done" / "se"


def _commit_step(left) -> int:
    return next(n for n, (what, _) in left.items() if what.startswith("replace") and what.endswith("journal.json.tmp"))


def test_a_kill_at_every_step_leaves_the_old_artifact_or_the_new_one(killed, tmp_path):
    old, new, left, _, _ = killed
    assert old != new
    commit = _commit_step(left)
    assert any(what.startswith("write") for n, (what, _) in left.items() if n < commit)  # torn writes are covered
    for n, (what, folder) in left.items():
        raw = tree(folder)
        copy = tmp_path / str(n)
        shutil.copytree(folder, copy)
        Artifact.open(copy).check_files()  # any deploykit command first finishes or discards the interrupted write
        expected, label = (old, "old") if n <= commit else (new, "new")
        assert tree(copy) == expected, f"kill at step {n} ({what}) did not leave the {label} artifact"
        if n <= commit:  # before the commit point nothing outside the staging folder changed, even before recovery
            assert {k: v for k, v in raw.items() if not k.startswith(STAGE_PREFIX)} == old, (n, what)


def _rerun_and_check(folder: Path, checkpoint: Path, new_folder: Path):
    result = cli("export", "se", "--out", folder.parent, "--checkpoint", checkpoint, "--reference-mb", "4")
    assert result.exit_code == 0, result.output
    assert "--force" not in result.output
    assert _manifest_free(folder) == _manifest_free(new_folder)
    Artifact.open(folder).check_files()


@pytest.mark.parametrize("where", ["a torn staged write", "between two publishes"])  # every step: the slow test
def test_export_run_again_after_a_kill_succeeds_without_force(where, killed, tmp_path):
    _, _, left, checkpoint, new_folder = killed
    commit = _commit_step(left)
    pick = {"a torn staged write": next(n for n, (w, _) in left.items() if w.startswith("write")),
            "between two publishes": next(n for n, (w, _) in left.items() if n > commit and w.startswith("replace")) + 1,
            }[where]
    copy = tmp_path / "out" / "se"
    shutil.copytree(left[pick][1], copy)
    _rerun_and_check(copy, checkpoint, new_folder)


@pytest.mark.slow
def test_export_run_again_after_a_kill_at_each_kind_of_step_succeeds_without_force(killed, tmp_path):
    """A re-run after a kill at the first step of each kind (open, write, fsync, rename, journal, commit, publish,
    clean up; before and after the commit point): recovery itself is checked at every step above, and an export per
    step (~30) cost half a minute of the suite."""
    _, _, left, checkpoint, new_folder = killed
    commit = _commit_step(left)
    kinds = {}
    for n, (what, folder) in left.items():
        kinds.setdefault((what.split()[0], n > commit), (n, folder))
    for n, folder in sorted(kinds.values()):
        copy = tmp_path / str(n) / "se"
        shutil.copytree(folder, copy)
        _rerun_and_check(copy, checkpoint, new_folder)


def test_files_get_the_umask(killed):
    *_, new_folder = killed
    written = {k: v for k, v in modes(new_folder).items() if k in ("model.onnx", "weights.pt", "manifest.json")}
    assert written == dict.fromkeys(written, 0o640) and len(written) == 3, written  # umask 027, not mkstemp's 0600


def test_a_file_changed_after_the_crash_is_not_overwritten_by_the_recovery(killed, tmp_path):
    _, _, left, _, _ = killed
    n = _commit_step(left) + 1  # committed, nothing published yet
    copy = tmp_path / "out" / "se"
    shutil.copytree(left[n][1], copy)
    (copy / "model.onnx").write_bytes(b"the user's own model")
    assert_one_line_error(cli("verify", "se", "--out", copy.parent), "model.onnx changed since")
    assert (copy / "model.onnx").read_bytes() == b"the user's own model"


# -- full disks ---------------------------------------------------------------------------------------
@pytest.fixture
def se_copy(tmp_path_factory, tmp_path):
    return artifact_copy(tmp_path_factory, "se", tmp_path / "out")


@pytest.fixture(scope="module")
def new_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "new.pt"
    torch.save(seeded_model(find_recipe("se", RECIPES), seed=1).state_dict(), path)
    return path


@pytest.mark.parametrize("where", [None, "journal"])
def test_export_on_a_full_disk_is_one_line_and_keeps_the_old_artifact(where, se_copy, new_weights):
    before = tree(se_copy)
    with injected(se_copy.parent, enospc_from=1, enospc_match=where):
        result = cli("export", "se", "--out", se_copy.parent, "--checkpoint", new_weights, "--no-simplify", "--no-optimize")
    assert_one_line_error(result, "No space left on device")
    assert tree(se_copy) == before


def test_verify_on_a_full_disk(se_copy):
    """Full while publishing (after the commit point): one line, and the next run finishes the write. Then full
    from the start: one line, and the results of the run before are intact."""
    shutil.rmtree(se_copy / "plots", ignore_errors=True)
    for name in ("verify.json", "report.md"):
        (se_copy / name).unlink(missing_ok=True)
    with injected(se_copy.parent, enospc_from=1, enospc_match="plots"):  # only the new plots/ folder cannot be made
        result = cli("verify", "se", "--out", se_copy.parent)
    assert_one_line_error(result, "the next deploykit command in that folder finishes it")
    assert not (se_copy / "report.md").exists()  # nothing published: the first file to publish needed plots/
    assert any(p.name.startswith(STAGE_PREFIX) for p in se_copy.iterdir())
    assert cli("verify", "se", "--out", se_copy.parent).exit_code == 0
    assert {"verify.json", "report.md", "plots/ort-cpu-fp32-y.png"} <= set(tree(se_copy))
    assert not any(p.name.startswith(STAGE_PREFIX) for p in se_copy.iterdir())

    before = tree(se_copy)
    with injected(se_copy.parent, enospc_from=1):
        result = cli("verify", "se", "--out", se_copy.parent, "--seed", "3")
    assert_one_line_error(result, "No space left on device")
    assert tree(se_copy) == before


def test_package_on_a_full_disk_is_one_line_and_writes_nothing(se_copy, tmp_path):
    repo = tmp_path / "repo"
    before = tree(se_copy)
    with injected(repo, enospc_from=1):
        result = cli("package", "se", "--triton", repo, "--out", se_copy.parent)
    assert_one_line_error(result, "No space left on device")
    assert tree(repo) == {} and tree(se_copy) == before  # the manifest's record is written only after staging


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 32 MiB tmpfs (room for an artifact with a 4 MB reference.npz; needs root and mount, the injected
    cases above need neither)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root to mount a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_export_onto_a_real_full_disk(small_tmpfs, tmp_path_factory, new_weights):
    artifact = artifact_copy(tmp_path_factory, "se", small_tmpfs)
    before = tree(artifact)
    with open(small_tmpfs / "filler", "wb") as handle:  # leave less room than the new files need
        free = shutil.disk_usage(small_tmpfs).free
        handle.write(b"\0" * max(free - 4096, 0))
    result = cli("export", "se", "--out", small_tmpfs, "--checkpoint", new_weights, "--reference-mb", "4")
    assert_one_line_error(result, "No space left on device")
    assert tree(artifact) == before
    (small_tmpfs / "filler").unlink()
    assert cli("export", "se", "--out", small_tmpfs, "--checkpoint", new_weights, "--reference-mb", "4").exit_code == 0
