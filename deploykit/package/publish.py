"""Files deploykit writes outside an artifact (a Triton model folder, a KServe folder), recorded in the
artifact's manifest so a later ``deploykit package`` replaces its own files and nothing else.

The package folder is one step (store/writer.py) and the manifest another, in another folder. The
record is written first, in store/ownership.py's one format, naming both the new files ("files") and those
about to be replaced ("superseded"); then the folder is published; then "superseded" is dropped. A crash
between any two steps leaves every file in the folder recognised as deploykit's (old or new), so the re-run
needs no ``--force``.
"""

from __future__ import annotations

from pathlib import Path

from ..artifact import Artifact
from ..errors import DeployKitError
from ..store.files import sha256_file
from ..store.manifest import read_manifest
from ..store.ownership import Ownership
from ..store.transaction import transaction
from ..store.writer import Step, artifact_step


def _entry(artifact: Artifact, section: str, key: str) -> tuple[dict, dict]:
    record = artifact.manifest.get(section, {})
    if not isinstance(record, dict):
        raise DeployKitError(f"{artifact.dir / 'manifest.json'}: {section!r} must be a JSON object")
    entry = record.get(key, {})
    return record, entry if isinstance(entry, dict) else {}


def recorded(artifact: Artifact, section: str, folder: Path) -> Ownership:
    """What deploykit recorded writing in ``folder`` (its current files, and those a crashed run was replacing)."""
    _, entry = _entry(artifact, section, str(Path(folder).resolve()))
    return Ownership.of(entry)


def check_package(artifact: Artifact, section: str, folder: Path, names, force: bool) -> None:
    """Refuse, before anything is written, to replace a file in ``folder`` deploykit did not write there."""
    recorded(artifact, section, folder).check(folder, names, force)


def publish_package(artifact: Artifact, section: str, folder: Path, files: dict[str, bytes], info: dict,
                    force: bool, executable: tuple[str, ...] = ()) -> dict[str, str]:
    """Write ``files`` under ``folder`` as one step, recorded in ``artifact``'s manifest ``section``.

    Files deploykit recorded for this folder before and not written now (e.g. ``1/model.onnx`` after
    switching to TensorRT) are removed, if unchanged. Returns {relative path: sha256}.
    """
    folder = Path(folder)
    key = str(folder.resolve())
    if key == str(artifact.dir.resolve()):
        raise DeployKitError(f"{folder} is the artifact's own folder; package into another folder")

    def recording(entry: dict):
        def merge(section_now):  # under the artifact's lock: other folders' records as they are now, kept
            record = dict(section_now) if isinstance(section_now, dict) else {}
            record[key] = entry
            return record
        return merge

    with transaction(folder) as txn:  # locked, and any interrupted write there finished, before the checks
        # the record as it is now, not as it was when the artifact was opened: a concurrent run may have written here
        artifact.manifest = read_manifest(artifact.dir)
        step = Step(txn, recorded(artifact, section, folder), force)
        written = {rel: step.write(rel, data, executable=rel in executable) for rel, data in files.items()}
        for rel, digest in step.owned.all().items():
            if rel not in files and (folder / rel).is_file() and sha256_file(folder / rel) == digest:
                step.remove(rel)
        replacing = {rel: sha256_file(folder / rel) for rel in files if (folder / rel).is_file()}
        with artifact_step(artifact) as record:  # before this folder is published: old and new files both ours
            record.record(section, recording({**info, "files": written, "superseded": replacing}))
    with artifact_step(artifact) as record:
        record.record(section, recording({**info, "files": written}))
    return written
