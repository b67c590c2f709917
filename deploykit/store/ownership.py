"""Which files deploykit wrote in a folder, and the one rule for replacing a file: only one of ours, unchanged.

One format wherever the record is kept: ``{"files": {path: sha256}, "superseded": {path: sha256}}``, ``files``
naming what deploykit wrote there last and ``superseded`` the earlier versions still recognised as its own (an
older export's files left beside a new one, the files a crashed package run was replacing). An artifact keeps it
at the top of its manifest, a report folder in its record file (verify.json, the bench summary's bench.json),
and a package folder in a section of its artifact's manifest.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DeployKitError
from .files import sha256_file


def check_can_overwrite(path: Path, known_sha256, force: bool) -> None:
    """Refuse to replace a file deploykit did not write (or that changed since), unless forced.

    ``known_sha256`` is what deploykit's record says it wrote at ``path``: one sha256, several, or None.
    """
    if force or not path.exists():
        return
    known = [known_sha256] if isinstance(known_sha256, str) else [k for k in (known_sha256 or ()) if k]
    if known and sha256_file(path) in known:
        return
    why = "was modified since deploykit wrote it" if known else "was not written by deploykit"
    raise DeployKitError(f"{path} exists and {why}; pass --force to overwrite it")


def _table(record, key: str) -> dict[str, str]:
    table = record.get(key) if isinstance(record, dict) else None
    return {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(table, dict) else {}  # a malformed record vouches for nothing


class Ownership:
    """The files deploykit wrote in one folder, read from wherever their record is kept (see the module doc)."""

    def __init__(self, files: dict[str, str] | None = None, superseded: dict[str, str] | None = None):
        self.files = dict(files or {})
        self.superseded = dict(superseded or {})

    @classmethod
    def of(cls, record) -> "Ownership":
        """The ownership a record (a manifest, a report's record, a package entry) holds; None holds nothing."""
        return cls(_table(record, "files"), _table(record, "superseded"))

    def known(self, name: str) -> list[str]:
        return [d for d in (self.files.get(name), self.superseded.get(name)) if d]

    def all(self) -> dict[str, str]:
        return {**self.superseded, **self.files}

    def check(self, folder: Path, names, force: bool) -> None:
        """Refuse, in one line, to replace any of ``names`` in ``folder`` that is not ours (unless ``force``)."""
        for name in names:
            check_can_overwrite(Path(folder) / name, self.known(name), force)
