"""What recovery trusts in a staging folder a crashed transaction left (transaction.py): nothing unchecked.

An artifact folder is untrusted input (copied from a colleague, unpacked from a storage URI), and every command
that opens one first finishes or discards interrupted writes there. So a staging folder is checked whole before
anything changes: a real folder (not a symlink) of regular files with the names deploykit stages, and a journal
whose entries are well-formed records naming plain paths inside the root, reached through no symlink. Anything
else is one line, and nothing is touched.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path, PurePosixPath

from ..errors import DeployKitError

STAGE_PREFIX = ".deploykit-txn."
JOURNAL = "journal.json"
_FORMAT = 1
_STAGED_NAME = re.compile(r"[0-9]{5}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STAGE_FILES = (JOURNAL, JOURNAL + ".tmp")


def clean_relative(relative) -> bool:
    """A plain relative path (``a/b.png``): no absolute path, no ``..``/``.``, no empty part, no staging folder."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        return False
    path = PurePosixPath(relative)
    return (not path.is_absolute() and path.as_posix() == relative and ".." not in path.parts
            and not path.parts[0].startswith(STAGE_PREFIX))


def symlink_on_path(root: Path, relative: str, *, last: bool = True) -> str | None:
    """The first component of ``root/relative`` that is a symlink (the last one only if ``last``), or None:
    a symlinked folder inside an artifact would send a write outside it."""
    path, parts = root, PurePosixPath(relative).parts
    for index, part in enumerate(parts):
        path = path / part
        if (last or index < len(parts) - 1) and path.is_symlink():
            return PurePosixPath(*parts[:index + 1]).as_posix()
    return None


def check_stage(root: Path, stage: Path) -> dict | None:
    """``stage``'s journal (None before its commit point) if every part of it is what deploykit writes:
    a real folder of regular files, entries naming plain paths inside ``root``; else one line, nothing changed."""
    def refuse(what: str):
        raise DeployKitError(f"{stage} {what}; deploykit changed nothing there: remove {stage.name} if it is not "
                             "an interrupted deploykit write")

    info = os.lstat(stage)
    if stat.S_ISLNK(info.st_mode):
        refuse("is a symlink, not a deploykit staging folder (deploykit does not follow it)")
    if not stat.S_ISDIR(info.st_mode):
        refuse("is not a folder")
    with os.scandir(stage) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                refuse(f"holds {entry.name!r}, which is not a regular file")
            if entry.name not in _STAGE_FILES and not _STAGED_NAME.fullmatch(entry.name):
                refuse(f"holds {entry.name!r}, which deploykit does not stage")
    if not (stage / JOURNAL).is_file():
        return None
    try:
        journal = json.loads((stage / JOURNAL).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        refuse(f"has an unreadable {JOURNAL} ({type(exc).__name__})")
    if not isinstance(journal, dict) or journal.get("format") != _FORMAT or not isinstance(journal.get("files"), list) \
            or not isinstance(journal.get("remove", []), list):
        refuse(f"has a malformed {JOURNAL}")
    digest = lambda v, optional=True: (v is None and optional) or (isinstance(v, str) and bool(_SHA256.fullmatch(v)))  # noqa: E731
    for entry in journal["files"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("staged"), str) and _STAGED_NAME.fullmatch(entry["staged"])
                and digest(entry.get("old")) and digest(entry.get("new"), optional=False)):
            refuse(f"has a malformed {JOURNAL} entry {str(entry)[:80]!r}")
    for entry in journal.get("remove", []):
        if not (isinstance(entry, dict) and digest(entry.get("old"))):
            refuse(f"has a malformed {JOURNAL} entry {str(entry)[:80]!r}")
    for entry in journal["files"] + journal.get("remove", []):
        if not clean_relative(entry.get("target")):
            refuse(f"names {str(entry.get('target'))[:80]!r}, which is not a plain path inside {root}")
        link = symlink_on_path(root, entry["target"])
        if link is not None:
            refuse(f"names {entry['target']!r}, but {link} in {root} is a symlink (deploykit does not follow it)")
    return journal
