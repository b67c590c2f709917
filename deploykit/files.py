"""Files are never half-written, and nothing a user already has is overwritten silently.

Writes go through one artifact transaction (transaction.py: staged, then published together, with the
user's umask; its ``atomic_write_*`` are the one-file ones); this module, below it, keeps reading, hashing,
JSON and the overwrite rule.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
from pathlib import Path

from .errors import DeployKitError, first_line


def open_regular(path: str | Path):
    """``path`` opened for reading if it is a regular file, else one line. O_NONBLOCK: opening a FIFO
    for reading waits for a writer for ever (an export.log replaced by a FIFO hung export)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket or a FIFO opened without blocking
            raise DeployKitError(f"{path} is not a regular file; remove it or choose another folder") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DeployKitError(f"{path} is not a regular file (a FIFO, a device or a folder); remove it or "
                             "choose another folder")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clean(value):
    """JSON cannot hold inf/nan: write them as strings so the output stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(data) -> str:
    return json.dumps(_clean(data), indent=2, default=str)



def check_can_overwrite(path: Path, known_sha256, force: bool) -> None:
    """Refuse to replace a file deploykit did not write (or that changed since), unless forced.

    ``known_sha256`` is what deploykit's own record says it wrote at ``path``: one sha256, several (a record
    that also names the files a crashed run was replacing), or None.
    """
    if force or not path.exists():
        return
    known = [known_sha256] if isinstance(known_sha256, str) else [k for k in (known_sha256 or ()) if k]
    if known and sha256_file(path) in known:
        return
    why = "was modified since deploykit wrote it" if known else "was not written by deploykit"
    raise DeployKitError(f"{path} exists and {why}; pass --force to overwrite it")


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; anything else (missing, unreadable, not JSON, a list) is one line."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DeployKitError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DeployKitError(f"{path} is not readable JSON: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise DeployKitError(f"{path} is not a JSON object (it holds a {type(data).__name__})")
    return data


# Names that become one folder or file (an artifact, a Triton model, an export's --name): one path
# component, no "..", no hidden or option-like name, nothing a shell or a URL would mangle.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def is_safe_name(name) -> bool:
    return isinstance(name, str) and bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def safe_name(name, what: str) -> str:
    """``name`` if it can be used as one path component, else a one-line DeployKitError naming ``what``."""
    if not is_safe_name(name):
        raise DeployKitError(f"{what} {name!r} is not a valid name: use letters, digits, '_', '-' and '.' "
                             "(starting with a letter, digit or '_'; no '/', no '..')")
    return name
