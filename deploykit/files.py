"""Files are never half-written, and nothing a user already has is overwritten silently."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from .errors import DeployKitError


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeployKitError(f"cannot create output folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise DeployKitError(f"output folder {path} is not writable")
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise DeployKitError(f"cannot write in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data) -> Path:
    return atomic_write_text(path, dumps(data) + "\n")


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



def check_can_overwrite(path: Path, known_sha256: str | None, force: bool) -> None:
    """Refuse to replace a file deploykit did not write (or that changed since), unless forced.

    ``known_sha256`` is what deploykit's own manifest recorded for this file, if anything.
    """
    if force or not path.exists():
        return
    if known_sha256 is not None and sha256_file(path) == known_sha256:
        return
    why = "was modified since deploykit wrote it" if known_sha256 else "was not written by deploykit"
    raise DeployKitError(f"{path} exists and {why}; pass --force to overwrite it")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployKitError(f"{path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DeployKitError(f"{path} is not readable JSON: {exc}") from None
