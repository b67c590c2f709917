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


@contextlib.contextmanager
def quiet(log: list[str] | None = None, *, stderr: bool = False):
    out = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
                (contextlib.redirect_stderr(out) if stderr else contextlib.nullcontext()):
            warnings.simplefilter("always")
            yield
    finally:
        logging.disable(previous)
        if log is not None:
            log.extend(str(w.message).splitlines()[0] for w in caught if str(w.message))
            log.extend(line for line in out.getvalue().splitlines() if line.strip())


def versions(*packages: str) -> dict[str, str | None]:
    """deploykit's and Python's versions, then each named package's (None when it is not installed).

    Every record of what produced a file (manifests, calibration provenance, bench results) uses this."""
    import importlib
    import platform

    from . import __version__

    found: dict[str, str | None] = {"deploykit": __version__, "python": platform.python_version()}
    for name in packages:
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "unknown")
        except ImportError:
            found[name] = None
    return found
