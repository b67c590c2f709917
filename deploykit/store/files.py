"""Reading, hashing and JSON for the store's files, and the names that may become a file or folder.

The leaf of the store: writes go through a transaction (transaction.py), and which files deploykit may
replace is ownership.py's rule.
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

from ..errors import DeployKitError, first_line


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


def json_bytes(data) -> bytes:
    """``data`` as a JSON file's bytes (what every JSON file deploykit writes holds)."""
    return (dumps(data) + "\n").encode()


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
