"""Third-party libraries: their versions, for the record, and their chatter kept off the terminal.

Keep third-party chatter (print() calls, logging warnings, Python warnings) off the terminal and
out of ``--json`` output, and keep it for the manifest instead.

The exporters also write to stderr, so they silence it too; calibration keeps stderr, where its
progress bars draw.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

from .version import __version__


@contextlib.contextmanager
def quiet(log: list[str] | None = None, *, stderr: bool = False, records: list | None = None):
    """Silence third-party output for the block; what was said goes to ``log`` (one entry per line).

    ``stderr=True`` also silences standard error, at the file-descriptor level too: native code
    (TorchScript's IR dumps, onnxruntime's C++ logger) writes to fd 1/2 directly, past Python's
    sys.stderr. ``records`` receives the raw ``warnings.WarningMessage`` objects (with file and line),
    e.g. the tracer's warnings, which the specialisation check reads."""
    out = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    native = _NativeOutput() if stderr else contextlib.nullcontext()
    try:
        with warnings.catch_warnings(record=True) as caught, native, contextlib.redirect_stdout(out), \
                (contextlib.redirect_stderr(out) if stderr else contextlib.nullcontext()):
            warnings.simplefilter("always")
            yield
    finally:
        logging.disable(previous)
        if records is not None:
            records.extend(caught)
        if log is not None:
            log.extend(str(w.message).splitlines()[0] for w in caught if str(w.message))
            log.extend(line for line in out.getvalue().splitlines() if line.strip())
            if stderr:
                log.extend(line for line in native.text.splitlines() if line.strip())


class _NativeOutput:
    """fd 1 and 2 pointed at a temporary file for a block, then restored; the text is kept.

    Python-level redirection (contextlib.redirect_stderr) cannot catch writes made by C++ code."""

    def __enter__(self):
        import os
        import sys
        import tempfile

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):  # a closed or replaced stream
                pass
        self.file = tempfile.TemporaryFile(mode="w+b")
        self.saved = []
        for fd in (1, 2):
            try:
                self.saved.append((fd, os.dup(fd)))
                os.dup2(self.file.fileno(), fd)
            except OSError:  # no such descriptor (embedded interpreters): nothing to silence there
                pass
        self.text = ""
        return self

    def __exit__(self, *exc):
        import os

        for fd, saved in self.saved:
            os.dup2(saved, fd)
            os.close(saved)
        self.file.seek(0)
        self.text = self.file.read().decode(errors="replace")
        self.file.close()
        return False


def versions(*packages: str) -> dict[str, str | None]:
    """deploykit's and Python's versions, then each named package's (None when it is not installed).

    Every record of what produced a file (manifests, calibration provenance, bench results) uses this."""
    import importlib
    import platform

    found: dict[str, str | None] = {"deploykit": __version__, "python": platform.python_version()}
    for name in packages:
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "unknown")
        except ImportError:
            found[name] = None
    return found
