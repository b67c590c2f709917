"""What every bad-input case asserts (issue 13): the exit code, one line on stderr and no traceback, and that
no file was lost or half-written (the folder is byte-for-byte what it was, or a complete new artifact)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from deploykit.cli import main


def cli(*args, env: dict | None = None):
    """``deploykit ARGS`` in this process (click's runner: stdout and stderr kept apart)."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_one_line_error(result, text: str = "", code: int = 2) -> str:
    """Exit ``code``, exactly one line on stderr (``error: ...`` containing ``text``), no traceback anywhere."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and 'File "' not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert text in lines[0], lines[0]
    return lines[0]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) -> sha256: equal trees mean nothing lost or half-written."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def modes(folder: Path) -> dict[str, int]:
    """Permission bits of every file and folder under ``folder`` (the folder included)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix() or ".": p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}
