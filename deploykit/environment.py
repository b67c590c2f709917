"""Keep third-party chatter (print() calls, logging warnings, Python warnings) off the terminal and
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
