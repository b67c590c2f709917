"""Checks on .npy/.npz files before numpy loads them: each array's header must fit the bytes that follow it.

numpy trusts a header: one declaring 224 GiB makes np.load allocate that much (a MemoryError traceback,
or the machine's memory) before it finds the file holds a few bytes; and an .npz member that is not an
.npy comes back as raw bytes. Both are one line here, before anything is allocated.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from .errors import DeployKitError, first_line


def _check_header(handle, available: int, where: str) -> None:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(handle)
    except (ValueError, OSError, EOFError) as exc:
        raise DeployKitError(f"{where}: not a readable .npy array: {first_line(exc)}") from None
    need = math.prod(shape) * dtype.itemsize
    have = available - handle.tell()
    if need > have:
        raise DeployKitError(f"{where}: its header declares shape {list(shape)} of {dtype} ({need} bytes), "
                             f"the file holds {max(have, 0)} bytes of data")


def check_array_file(file: Path) -> None:
    """One line for a truncated or lying .npy, or an .npz holding anything but .npy members."""
    if file.suffix.lower() == ".npy":
        with open(file, "rb") as handle:
            _check_header(handle, file.stat().st_size, str(file))
        return
    try:
        with zipfile.ZipFile(file) as archive:
            for member in archive.infolist():
                where = f"{file}: member {member.filename!r}"
                if not member.filename.endswith(".npy"):
                    raise DeployKitError(f"{where} is not an .npy array (an .npz holds one .npy per input)")
                with archive.open(member) as handle:
                    _check_header(handle, member.file_size, where)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DeployKitError(f"{file}: cannot read arrays: {first_line(exc)}") from None
