"""One artifact transaction: every file of one step is staged first, then published together.

Writing an artifact's files one by one (weights.pt, then model.onnx, then manifest.json) leaves, after a
crash or a full disk between two of them, a folder that is neither the old artifact nor the new one and
that the next run refuses as "not written by deploykit". Here one step (an export, a calibration, a bench
or verify run, an engine build, a Triton package) is one transaction over one folder, its *root*:

1. **Lock.** ``flock`` on the root folder itself (no lock file left behind), held until the end: two deploykit
   processes never interleave in one folder, and recovery (4) never touches a live transaction's files. The
   kernel drops a dead process's lock.
2. **Stage.** Every file goes to a hidden staging folder inside the root, ``<root>/.deploykit-txn.<id>/`` (the
   same filesystem, so publishing is one rename), written with ``os.open(..., 0o666)`` so the kernel applies
   the user's umask (``tempfile.mkstemp`` would give 0600), and fsynced. The targets are not touched yet: a crash
   or an error here leaves the previous files exactly as they were.
3. **Commit, then publish.** The journal (each staged file's target and sha256, and what the target held
   before) is written to ``journal.json.tmp``, fsynced and renamed to ``journal.json``, and the staging folder
   fsynced: that rename is the commit point. Then each staged file is renamed over its target (rename(2) is
   atomic: a target is the old file or the new one, never a torn mix), the parent folders fsynced, and the
   staging folder removed. The caller orders the files (e.g. manifest last, a Triton config after its model).
4. **Recover.** Every transaction, and every ``Artifact.open``, first looks for staging folders in its root.
   One without a journal died before its commit point: it is discarded and the root holds the previous files.
   One with a journal died while publishing: it is finished (idempotent: each file is either still staged or
   already published). So after a SIGKILL at any instant the next deploykit command sees the previous complete
   set of files or the new complete set, and a re-run never needs ``--force`` for files deploykit wrote.
   A target changed between the crash and the recovery is not overwritten: that is a one-line error.

A record of what deploykit wrote that lives in *another* folder (the artifact manifest's record of a Triton
repository) is written before that folder's transaction and names both the old and the new files' sha256,
so a crash between the two leaves both recognised (``package/publish.py``).

Errors from the filesystem (a full disk, a read-only folder, permissions) become one-line DeployKitErrors
naming the file, with the previous files intact (or, after the commit point, finished by the next run).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
from pathlib import Path

from ..errors import DeployKitError
from .files import json_bytes, sha256_file
from .staging import _FORMAT, JOURNAL, STAGE_PREFIX, check_stage, symlink_on_path

_FILE_MODE = 0o666  # the kernel applies the umask to these modes at creation: the user's umask, in one place
_EXEC_MODE = 0o777

_active: dict[str, "Transaction"] = {}  # root -> the live transaction of this process (recovery skips its stage)
_active_lock = threading.Lock()


def _file_sha256(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, mode: int = _FILE_MODE) -> None:
    """Create ``path`` (it must not exist) with ``mode`` under the umask, write ``data``, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(folder: Path) -> None:
    """Remove a staging folder (flat: files only), its journal first: a crash half way through leaves a
    stage without a journal (discarded next time), never a journal whose staged files are half gone."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / JOURNAL)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(folder)


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def _locked(root: Path):
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def make_root(root: Path) -> Path:
    """Create ``root`` (and its parents, with the umask's mode) if needed; one line if that fails."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeployKitError(f"cannot create output folder {root}: {_describe(exc)}") from None
    if not root.is_dir():
        raise DeployKitError(f"{root} exists and is not a folder")
    if not os.access(root, os.W_OK):
        raise DeployKitError(f"output folder {root} is not writable")
    return root


# -- recovery ----------------------------------------------------------------------------------------
def _stages(root: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(root) if e.name.startswith(STAGE_PREFIX))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:  # a symlink loop, no permission: one line, not a traceback
        raise DeployKitError(f"cannot read folder {root}: {_describe(exc)}") from None


def _publish(root: Path, stage: Path, journal: dict) -> None:
    """Roll a committed journal forward; safe to repeat (after a crash in here, the next run does it again)."""
    parents = set()
    for entry in journal["files"]:
        staged, target = stage / entry["staged"], root / entry["target"]
        if not staged.exists():
            continue  # published before the crash
        current = _file_sha256(target)
        if current not in (entry["old"], entry["new"]):
            raise DeployKitError(f"an interrupted deploykit write in {root} cannot be finished: {entry['target']} "
                                 f"changed since; move it away (or remove {stage.name}) and run again")
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        parents.add(target.parent)
    for entry in journal.get("remove", []):
        target = root / entry["target"]
        if _file_sha256(target) == entry["old"]:
            os.unlink(target)
            parents.add(target.parent)
    for parent in sorted(parents):
        _fsync_dir(parent)
    _remove_tree(stage)
    _fsync_dir(root)


def _recover_locked(root: Path, skip: Path | None = None) -> None:
    stages = [stage for stage in _stages(root) if stage != skip]
    journals = [check_stage(root, stage) for stage in stages]  # every stage checked before any is touched
    for stage, journal in zip(stages, journals):
        if journal is not None:
            _publish(root, stage, journal)  # died after the commit point: finish it
        else:
            _remove_tree(stage)  # died before the commit point: the targets are untouched


def recover(root: str | Path) -> None:
    """Finish or discard what a crashed transaction left in ``root`` (a no-op, without locking, when nothing)."""
    root = Path(root)
    if not _stages(root):
        return
    with _active_lock:
        live = _active.get(str(root.resolve()))
    try:
        if live is not None:  # this process is writing here: its lock is held, its own stage is not stale
            _recover_locked(root, skip=live.stage)
            return
        with _locked(root):
            _recover_locked(root)
    except OSError as exc:
        raise DeployKitError(f"cannot finish an interrupted deploykit write in {root}: {_describe(exc)}") from None


# -- the transaction --------------------------------------------------------------------------------
class Transaction:
    """Files staged under one root and published together; see the module docstring.

    Use through :func:`transaction`; ``write`` takes paths relative to the root (``"plots/a.png"``).
    """

    def __init__(self, root: Path):
        self.root = root
        self.stage: Path | None = None
        self._files: dict[str, tuple[str, str]] = {}  # target -> (staged name, sha256), in write order
        self._remove: list[str] = []
        self._count = 0  # staged files are numbered; names in the stage never repeat

    # paths ---------------------------------------------------------------------------------------
    def target(self, relative: str | Path) -> str:
        """``relative`` as a clean path under the root; a path that leaves the root is a bug or an attack."""
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0].startswith(STAGE_PREFIX):
            raise DeployKitError(f"refusing to write {relative!s}: not a path inside {self.root}")
        link = symlink_on_path(self.root, rel.as_posix(), last=False)  # replacing a symlink itself stays inside
        if link is not None:
            raise DeployKitError(f"refusing to write {self.root / rel}: {link} is a symlink (it could lead outside "
                                 f"{self.root}); replace it with a folder")
        return rel.as_posix()

    # staging -------------------------------------------------------------------------------------
    def write(self, relative: str | Path, data: bytes, *, executable: bool = False) -> str:
        """Stage ``data`` for ``root/relative``; return its sha256 (what a manifest records)."""
        target = self.target(relative)
        self._count += 1
        name = f"{self._count:05d}"
        try:
            _write_new(self.stage / name, data, _EXEC_MODE if executable else _FILE_MODE)
        except OSError as exc:
            raise DeployKitError(f"cannot write {self.root / target}: {_describe(exc)}") from None
        previous = self._files.get(target)
        if previous is not None:  # written twice in one step: the last one wins
            os.unlink(self.stage / previous[0])
        self._files[target] = (name, hashlib.sha256(data).hexdigest())
        return self._files[target][1]

    def write_json(self, relative: str | Path, data) -> str:
        return self.write(relative, json_bytes(data))

    def remove(self, relative: str | Path) -> None:
        """Delete ``root/relative`` at publish time, if it still holds what it holds now (a stale file of ours)."""
        self._remove.append(self.target(relative))

    def sha256(self, relative: str | Path) -> str | None:
        """The sha256 ``root/relative`` will have after publishing: the staged file's, else the current file's."""
        target = self.target(relative)
        return self._files[target][1] if target in self._files else _file_sha256(self.root / target)

    # commit --------------------------------------------------------------------------------------
    def _commit(self) -> None:
        if not self._files and not self._remove:
            _remove_tree(self.stage)
            return
        try:
            journal = {"format": _FORMAT,
                       "files": [{"staged": name, "target": target, "old": _file_sha256(self.root / target), "new": sha}
                                 for target, (name, sha) in self._files.items()],
                       "remove": [{"target": t, "old": _file_sha256(self.root / t)} for t in self._remove
                                  if t not in self._files]}
            _write_new(self.stage / (JOURNAL + ".tmp"), json.dumps(journal).encode())
            os.replace(self.stage / (JOURNAL + ".tmp"), self.stage / JOURNAL)  # the commit point
            _fsync_dir(self.stage)
        except OSError as exc:
            with contextlib.suppress(OSError):
                _remove_tree(self.stage)
            raise DeployKitError(f"cannot write in {self.root}: {_describe(exc)} (the previous files are unchanged)") from None
        try:
            _publish(self.root, self.stage, journal)
        except OSError as exc:
            raise DeployKitError(f"writing {self.root} was interrupted: {_describe(exc)}; the next deploykit "
                                 "command in that folder finishes it") from None


@contextlib.contextmanager
def transaction(root: str | Path):
    """Stage files under ``root`` and publish them together when the block ends without an exception.

    One step writes through one transaction it holds (writer.py hands it over explicitly); a second one on the
    same root in this process would wait for ever on its own lock, so it is refused as the bug it is.
    """
    root = make_root(Path(root))
    key = str(root.resolve())
    with _active_lock:
        outer = _active.get(key)
    if outer is not None:
        raise DeployKitError(f"a deploykit bug: a second write transaction on {root} inside the first; "
                             "please report it")
    txn = Transaction(root)
    with _locked(root):
        try:
            _recover_locked(root)
            txn.stage = root / f"{STAGE_PREFIX}{os.getpid()}.{secrets.token_hex(4)}"
            os.mkdir(txn.stage)
        except OSError as exc:
            raise DeployKitError(f"cannot write in {root}: {_describe(exc)}") from None
        with _active_lock:
            _active[key] = txn
        try:
            yield txn
        except BaseException:
            with contextlib.suppress(OSError):  # an error (or Ctrl-C) before the commit: nothing published
                _remove_tree(txn.stage)
            raise
        else:
            txn._commit()
        finally:
            with _active_lock:
                _active.pop(key, None)


# -- one-file writes outside any artifact step (a timing cache, a refused export's log) ------------------
def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """``path`` written as a one-file transaction: staged, fsynced, renamed over the target."""
    path = Path(path)
    with transaction(path.parent) as txn:
        txn.write(path.name, data)
    return path
