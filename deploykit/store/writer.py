"""The one way deploykit writes: a step over one folder, in one ``with`` block.

    with artifact_step(artifact, force=force) as step:   # lock, recover, the ownership record read under the lock
        step.write(INT8_MODEL, data)                       # refused if the file there is not deploykit's (or changed)
        step.write_json(CALIBRATION_RANGES, ranges)
        step.record("calibration", {...})                  # a manifest section
    # published together, the manifest (with every written file's sha256) last

Three kinds of folder, one rule (ownership.py) and one mechanism (transaction.py):
- an artifact (``artifact_step``; ``new_artifact`` for export, which replaces the manifest whole);
- a report folder whose record file is its ownership record (``record_step``: verify.json, the bench summary);
- a folder whose record lives in another folder's step (``Step`` on its own: the package folders, package/publish.py).
A step's writes go through the step it is handed: nothing joins a transaction by path.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

from ..errors import DeployKitError
from .files import json_bytes, read_json
from .layout import MANIFEST
from .manifest import previous_manifest, read_manifest
from .ownership import Ownership
from .transaction import Transaction, transaction


class Step:
    """One step's files in one folder: each checked against what deploykit wrote there, staged, published together."""

    def __init__(self, txn: Transaction, owned: Ownership, force: bool):
        self.txn, self.owned, self.force = txn, owned, force
        self.written: dict[str, str] = {}  # relative path -> sha256, in write order

    @property
    def root(self) -> Path:
        return self.txn.root

    def write(self, name: str, data: bytes, *, executable: bool = False) -> str:
        """Stage ``data`` for ``root/name``; return its sha256."""
        if name not in self.written:  # checked under the folder's lock: a file changed since the pre-check is refused
            self.owned.check(self.root, [name], self.force)
        self.written[name] = self.txn.write(name, data, executable=executable)
        return self.written[name]

    def write_json(self, name: str, data) -> str:
        return self.write(name, json_bytes(data))

    def remove(self, name: str) -> None:
        """Delete ``root/name`` at publish time if it still holds what it holds now (a stale file of ours)."""
        self.txn.remove(name)


class ArtifactStep(Step):
    """A step in an artifact folder; ``record`` sets a manifest section, published with the files."""

    def __init__(self, txn: Transaction, manifest: dict, force: bool):
        super().__init__(txn, Ownership.of(manifest), force)
        self.manifest = manifest

    def record(self, section: str, data) -> None:
        """``data``, or ``data(section as it is now)`` for a merge (concurrent package runs keep each other's)."""
        self.manifest[section] = data(self.manifest.get(section, {})) if callable(data) else data


@contextlib.contextmanager
def artifact_step(artifact, force: bool = False):
    """A later step in ``artifact`` (calibrate, build-trt, bench): see the module docstring.

    The manifest is read again under the folder's lock, so concurrent steps do not drop each other's sections;
    ``artifact.manifest`` is the published one afterwards."""
    with transaction(artifact.dir) as txn:
        step = ArtifactStep(txn, read_manifest(artifact.dir), force)
        yield step
        manifest = step.manifest
        manifest["files"].update(step.written)
        for name in step.written:
            manifest.get("superseded", {}).pop(name, None)
        txn.write_json(MANIFEST, manifest)
    artifact.manifest = manifest


def check_new_artifact(folder: Path, names, force: bool) -> Ownership:
    """What deploykit wrote in ``folder``; one line if export may not replace ``names`` and the manifest there."""
    previous = previous_manifest(folder)
    if previous is None and (Path(folder) / MANIFEST).exists() and not force:
        raise DeployKitError(f"{Path(folder) / MANIFEST} exists and was not written by deploykit; "
                             "pass --force to overwrite it")
    owned = Ownership.of(previous)
    owned.check(folder, names, force)
    return owned


@contextlib.contextmanager
def new_artifact(folder: Path, manifest: dict, force: bool = False):
    """Export: a new artifact's files, then ``manifest`` (given every file's sha256), as one step.

    Files an earlier export wrote that are still there unchanged stay recognised as deploykit's, under
    ``superseded``: they belong to the old model, not to this artifact."""
    with transaction(folder) as txn:
        step = Step(txn, check_new_artifact(folder, (), force), force)
        yield step
        manifest["files"] = dict(step.written)
        superseded = {name: digest for name, digest in step.owned.all().items()
                      if name not in step.written and txn.sha256(name) == digest}
        if superseded:
            manifest["superseded"] = superseded
        txn.write_json(MANIFEST, manifest)


def read_record(path: Path, is_ours: Callable[[dict], bool], fresh: dict, force: bool, what: str) -> dict:
    """The record file a report folder keeps (``is_ours`` recognises it), or ``fresh`` when there is none (or, with
    ``force``, when there is another file in its place); anything else is refused in one line."""
    path = Path(path)
    if not path.exists():
        return fresh
    try:
        data = read_json(path)
    except DeployKitError:
        data = None
    if data is not None and is_ours(data):
        return data
    if force:
        return fresh
    raise DeployKitError(f"{path} exists and was not written by {what}; pass --force to overwrite it")


class RecordStep(Step):
    """A step in a report folder; ``document`` is its record file's content, published last with the files' sha256."""

    def __init__(self, txn: Transaction, document: dict, force: bool):
        super().__init__(txn, Ownership.of(document), force)
        self.document = document


@contextlib.contextmanager
def record_step(folder: Path, record: str, is_ours: Callable[[dict], bool], fresh: dict, force: bool, what: str):
    """A step in a report folder whose file ``record`` (verify.json, bench.json) records what deploykit wrote there."""
    with transaction(folder) as txn:
        step = RecordStep(txn, read_record(Path(folder) / record, is_ours, fresh, force, what), force)
        yield step
        step.document["files"] = {**step.owned.files, **step.written}
        txn.write_json(record, step.document)
