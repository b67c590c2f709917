"""Files deploykit writes outside an artifact (a Triton model folder, a KServe folder), recorded in the
artifact's manifest so a later ``deploykit package`` replaces its own files and nothing else.

The package folder is one transaction (transaction.py) and the manifest another, in another folder. The
record is written first, naming both the files about to be replaced ("replacing") and the new ones
("files"); then the folder is published; then "replacing" is dropped. A crash between any two steps leaves
every file in the folder recognised as deploykit's (old or new), so the re-run needs no ``--force``.
"""

from __future__ import annotations

from pathlib import Path

from ..artifact import MANIFEST, Artifact, check_manifest, update_manifest
from ..errors import DeployKitError
from ..files import check_can_overwrite, read_json, sha256_file
from ..transaction import transaction


def _entry(artifact: Artifact, section: str, key: str) -> tuple[dict, dict]:
    record = artifact.manifest.get(section, {})
    if not isinstance(record, dict):
        raise DeployKitError(f"{artifact.dir / 'manifest.json'}: {section!r} must be a JSON object")
    entry = record.get(key, {})
    return record, entry if isinstance(entry, dict) else {}


def recorded(artifact: Artifact, section: str, folder: Path) -> list[dict]:
    """The sha256 tables deploykit recorded for ``folder`` (its current files, and those a crashed run replaced)."""
    _, entry = _entry(artifact, section, str(Path(folder).resolve()))
    return [t for t in (entry.get("files"), entry.get("replacing")) if isinstance(t, dict)]


def check_package(artifact: Artifact, section: str, folder: Path, names, force: bool) -> None:
    """Refuse, before anything is written, to replace a file in ``folder`` deploykit did not write there."""
    tables = recorded(artifact, section, folder)
    for name in names:
        check_can_overwrite(Path(folder) / name, [t[name] for t in tables if name in t], force)


def publish_package(artifact: Artifact, section: str, folder: Path, files: dict[str, bytes], info: dict,
                    force: bool, executable: tuple[str, ...] = ()) -> dict[str, str]:
    """Write ``files`` under ``folder`` as one transaction, recorded in ``artifact``'s manifest ``section``.

    Files deploykit recorded for this folder before and not written now (e.g. ``1/model.onnx`` after
    switching to TensorRT) are removed, if unchanged. Returns {relative path: sha256}.
    """
    folder = Path(folder)
    key = str(folder.resolve())

    def recording(entry: dict):
        def merge(section_now):  # under the artifact's lock: other folders' records as they are now, kept
            record = dict(section_now) if isinstance(section_now, dict) else {}
            record[key] = entry
            return record
        return merge

    with transaction(folder) as txn:  # locked, and any interrupted write there finished, before the checks
        # the record as it is now, not as it was when the artifact was opened: a concurrent run may have written here
        artifact.manifest = check_manifest(artifact.dir / MANIFEST, read_json(artifact.dir / MANIFEST))
        check_package(artifact, section, folder, files, force)
        tables = recorded(artifact, section, folder)
        written = {rel: txn.write(rel, data, executable=rel in executable) for rel, data in files.items()}
        for table in tables:
            for rel, digest in table.items():
                if rel not in files and (folder / rel).is_file() and sha256_file(folder / rel) == digest:
                    txn.remove(rel)
        replacing = {rel: sha256_file(folder / rel) for rel in files if (folder / rel).is_file()}
        update_manifest(artifact, section, recording({**info, "files": written, "replacing": replacing}))
    update_manifest(artifact, section, recording({**info, "files": written}))
    return written
