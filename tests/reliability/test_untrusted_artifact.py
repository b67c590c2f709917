"""Bad-input suite, the artifact as untrusted input (issue 24): what recovery finds in a folder copied from
someone else. A staging folder that is a symlink, journal entries that name paths outside the artifact (write,
``remove``, ``staged``), malformed journals, an artifact folder that is a symlink to itself. Each case asserts the
exit code, one line and no traceback, and that neither the artifact nor a sibling folder of the user's changed.
"""

import hashlib
import json
import os

import pytest

from deploykit.artifact import Artifact
from deploykit.errors import DeployKitError
from deploykit.store.transaction import recover, transaction

from ..artifact_cache import artifact_copy
from .checks import assert_one_line_error, cli, tree

STAGE = ".deploykit-txn.99.cafe"


@pytest.fixture
def se(tmp_path_factory, tmp_path):
    return artifact_copy(tmp_path_factory, "se", tmp_path / "out")


@pytest.fixture
def user(tmp_path):
    """A folder of the user's next to the artifacts, with a file one level up that `../../f` entries aim at."""
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work\n")
    (folder / "data.bin").write_bytes(os.urandom(256))
    (tmp_path / "out" / "f").write_text("the user's f\n")
    return folder


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _everything(tmp_path):
    """Every file under the test's folder (artifact, its siblings, the user's folder): nothing may change."""
    return tree(tmp_path)


def _stage(se, journal=None, staged: dict | None = None):
    """A staging folder as a crashed (or forged) transaction leaves it: staged files, then maybe a journal."""
    stage = se / STAGE
    stage.mkdir()
    for name, data in (staged or {}).items():
        (stage / name).write_bytes(data)
    if journal is not None:
        (stage / "journal.json").write_text(journal if isinstance(journal, str) else json.dumps(journal))
    return stage


def _write_entry(target, staged="00001", data=b"forged\n", old=None):
    return {"format": 1, "files": [{"staged": staged, "target": target, "old": old, "new": _sha(data)}], "remove": []}


def _refused(folder, text):
    with pytest.raises(DeployKitError) as caught:
        Artifact.open(folder)
    message = str(caught.value)
    assert "\n" not in message and text in message, message
    return message


# -- a staging folder that is a symlink --------------------------------------------------------------
@pytest.mark.parametrize("command", ["verify", "package", pytest.param("calibrate", marks=pytest.mark.slow),
                                     pytest.param("bench", marks=pytest.mark.slow)])
def test_a_staging_symlink_to_the_users_folder_is_refused_and_the_folder_kept(command, se, user, tmp_path):
    (se / STAGE).symlink_to(user, target_is_directory=True)
    before = _everything(tmp_path)
    args = {"verify": ["verify", "se"], "package": ["package", "se", "--triton", tmp_path / "repo"],
            "calibrate": ["calibrate", "se", "--synthetic", "2"], "bench": ["bench", "se", "--iters", "1"]}[command]
    assert_one_line_error(cli(*args, "--out", se.parent), "is a symlink, not a deploykit staging folder")
    assert _everything(tmp_path) == before and (se / STAGE).is_symlink()
    assert not (tmp_path / "repo").exists()


@pytest.mark.slow
@pytest.mark.timeout(120)  # a server that did start would never return
def test_serve_refuses_a_staging_symlink_before_it_listens(se, user, tmp_path):
    (se / STAGE).symlink_to(user, target_is_directory=True)
    before = _everything(tmp_path)
    assert_one_line_error(cli("serve", se, "--port", "0", "--no-grpc"), "is a symlink")
    assert _everything(tmp_path) == before


def test_a_staging_symlink_is_refused_by_the_library_too(se, user, tmp_path):
    (se / STAGE).symlink_to(user, target_is_directory=True)
    before = _everything(tmp_path)
    for attempt in (lambda: recover(se), lambda: Artifact.open(se)):
        with pytest.raises(DeployKitError, match="is a symlink"):
            attempt()
    with pytest.raises(DeployKitError, match="is a symlink"), transaction(se) as txn:
        txn.write("extra.txt", b"x")
    assert _everything(tmp_path) == before


def test_a_staging_name_that_is_a_file_is_refused(se, user, tmp_path):
    (se / STAGE).write_text("not a folder")
    before = _everything(tmp_path)
    _refused(se, "is not a folder")
    assert _everything(tmp_path) == before


def test_a_dangling_staging_symlink_is_refused(se, user, tmp_path):
    (se / STAGE).symlink_to(tmp_path / "nowhere")
    before = _everything(tmp_path)
    _refused(se, "is a symlink")
    assert _everything(tmp_path) == before and (se / STAGE).is_symlink()


# -- what a staging folder holds ---------------------------------------------------------------------
def test_a_folder_inside_a_stage_is_refused(se, user, tmp_path):
    (_stage(se) / "sub").mkdir()
    before = _everything(tmp_path)
    _refused(se, "'sub', which is not a regular file")
    assert _everything(tmp_path) == before


def test_a_symlink_inside_a_stage_is_refused(se, user, tmp_path):
    (_stage(se) / "00001").symlink_to(user / "thesis.tex")
    before = _everything(tmp_path)
    _refused(se, "'00001', which is not a regular file")
    assert _everything(tmp_path) == before and (user / "thesis.tex").exists()


def test_a_file_deploykit_does_not_stage_is_refused(se, user, tmp_path):
    _stage(se, staged={"notes.txt": b"mine"})
    before = _everything(tmp_path)
    _refused(se, "'notes.txt', which deploykit does not stage")
    assert _everything(tmp_path) == before


# -- journal entries naming paths outside the artifact ------------------------------------------------
OUTSIDE_TARGETS = {
    "parent_parent": "../../f",
    "parent": "../f",
    "absolute": "/tmp/deploykit-untrusted-f",
    "inner_parent": "plots/../../f",
    "dot": "./model.onnx",
    "empty": "",
    "double_slash": "plots//a.png",
    "a_stage": ".deploykit-txn.1.ab/00001",
    "nul": "model\x00.onnx",
    "not_a_string": 7,
}


@pytest.mark.parametrize("case", sorted(OUTSIDE_TARGETS))
def test_a_write_entry_outside_the_root_is_refused(case, se, user, tmp_path):
    _stage(se, _write_entry(OUTSIDE_TARGETS[case]), {"00001": b"forged\n"})
    before = _everything(tmp_path)
    _refused(se, "which is not a plain path inside")
    assert _everything(tmp_path) == before
    assert not os.path.exists("/tmp/deploykit-untrusted-f")


@pytest.mark.parametrize("target", ["../../f", "../user/thesis.tex", "/etc/hostname"])
def test_a_remove_entry_outside_the_root_is_refused(target, se, user, tmp_path):
    victim = (se / target) if not target.startswith("/") else None
    old = _sha(victim.read_bytes()) if victim is not None and victim.exists() else None
    _stage(se, {"format": 1, "files": [], "remove": [{"target": target, "old": old}]})
    before = _everything(tmp_path)
    _refused(se, "which is not a plain path inside")
    assert _everything(tmp_path) == before


@pytest.mark.parametrize("staged", ["../../f", "../../user/thesis.tex", "/etc/hostname", "1", "000001", "journal.json"])
def test_a_staged_entry_that_is_not_a_staged_name_is_refused(staged, se, user, tmp_path):
    """A `staged` of ../../f would move a file of the user's into the artifact."""
    _stage(se, _write_entry("moved.txt", staged=staged), {"00001": b"forged\n"})
    before = _everything(tmp_path)
    _refused(se, "malformed journal.json entry")
    assert _everything(tmp_path) == before and not (se / "moved.txt").exists()


def test_an_entry_through_a_symlinked_folder_inside_the_artifact_is_refused(se, user, tmp_path):
    (se / "plots").symlink_to(user, target_is_directory=True)
    _stage(se, _write_entry("plots/thesis.tex"), {"00001": b"forged\n"})
    before = _everything(tmp_path)
    _refused(se, "plots in")
    assert _everything(tmp_path) == before


def test_a_remove_entry_naming_a_symlink_is_refused(se, user, tmp_path):
    (se / "notes").symlink_to(user / "thesis.tex")
    old = _sha((user / "thesis.tex").read_bytes())
    _stage(se, {"format": 1, "files": [], "remove": [{"target": "notes", "old": old}]})
    before = _everything(tmp_path)
    _refused(se, "is a symlink")
    assert _everything(tmp_path) == before and (se / "notes").is_symlink()


# -- malformed journals -----------------------------------------------------------------------------
MALFORMED = {
    "not_json": ("{files: [", "unreadable journal.json"),
    "not_utf8": (b"\xff\xfe\x00", "unreadable journal.json"),
    "deeply_nested": ("[" * 100000 + "]" * 100000, "unreadable journal.json"),
    "a_list": ([], "malformed journal.json"),
    "other_format": ({"format": 2, "files": []}, "malformed journal.json"),
    "no_files": ({"format": 1}, "malformed journal.json"),
    "files_a_dict": ({"format": 1, "files": {}}, "malformed journal.json"),
    "remove_a_string": ({"format": 1, "files": [], "remove": "x"}, "malformed journal.json"),
    "entry_a_string": ({"format": 1, "files": ["model.onnx"]}, "malformed journal.json entry"),
    "entry_without_new": ({"format": 1, "files": [{"staged": "00001", "target": "a", "old": None}]},
                          "malformed journal.json entry"),
    "entry_bad_hash": ({"format": 1, "files": [{"staged": "00001", "target": "a", "old": "zz", "new": "0" * 64}]},
                       "malformed journal.json entry"),
    "remove_without_old": ({"format": 1, "files": [], "remove": [{"target": "manifest.json", "old": 5}]},
                           "malformed journal.json entry"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_journal_is_one_line_and_changes_nothing(case, se, user, tmp_path):
    journal, text = MALFORMED[case]
    stage = _stage(se, staged={"00001": b"forged\n"})
    (stage / "journal.json").write_bytes(journal if isinstance(journal, bytes) else
                                         (journal if isinstance(journal, str) else json.dumps(journal)).encode())
    before = _everything(tmp_path)
    _refused(se, text)
    assert _everything(tmp_path) == before


def test_a_malformed_journal_is_one_line_from_the_cli(se, user, tmp_path):
    _stage(se, "{not json", {"00001": b"x"})
    before = _everything(tmp_path)
    assert_one_line_error(cli("verify", "se", "--out", se.parent), "unreadable journal.json")
    assert _everything(tmp_path) == before


def test_one_bad_stage_stops_recovery_before_a_good_one_is_touched(se, user, tmp_path):
    good = se / ".deploykit-txn.1.aaaa"  # sorts first: checked, but not published, before the bad one is found
    good.mkdir()
    (good / "00001").write_bytes(b"fine\n")
    (good / "journal.json").write_text(json.dumps(_write_entry("fine.txt", data=b"fine\n")))
    _stage(se, _write_entry("../../f"), {"00001": b"forged\n"})
    before = _everything(tmp_path)
    _refused(se, "not a plain path inside")
    assert _everything(tmp_path) == before and not (se / "fine.txt").exists()


def test_a_well_formed_interrupted_write_is_still_finished(se, user, tmp_path):
    """The checks refuse forgeries, not deploykit's own journals: a committed stage is published."""
    _stage(se, _write_entry("plots/extra.txt", data=b"staged\n"), {"00001": b"staged\n"})
    outside = tree(user)
    Artifact.open(se)
    assert (se / "plots" / "extra.txt").read_bytes() == b"staged\n"
    assert not (se / STAGE).exists() and tree(user) == outside


# -- the artifact folder itself -----------------------------------------------------------------------
@pytest.mark.parametrize("command", ["verify", "package", pytest.param("calibrate", marks=pytest.mark.slow)])
def test_an_artifact_folder_that_is_a_symlink_to_itself_is_one_line(command, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "loop").symlink_to(out / "loop")
    args = {"verify": ["verify", "loop", "--trust-code"], "package": ["package", "loop", "--triton", tmp_path / "repo"],
            "calibrate": ["calibrate", "loop", "--synthetic", "2", "--trust-code"]}[command]
    before = _everything(tmp_path)
    result = cli(*args, "--out", out)
    assert_one_line_error(result, "loop")
    assert _everything(tmp_path) == before and (out / "loop").is_symlink()


def test_an_artifact_folder_that_is_a_symlink_to_itself_is_one_line_in_the_library(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(DeployKitError, match="symbolic links"):
        Artifact.open(tmp_path / "loop")


def test_an_artifact_reached_through_a_symlinked_folder_still_opens(se, tmp_path):
    """A symlinked artifact folder is a normal setup (artifacts/ on another disk): only what is inside is checked."""
    (tmp_path / "elsewhere").symlink_to(se, target_is_directory=True)
    assert Artifact.open(tmp_path / "elsewhere").name == "se"
