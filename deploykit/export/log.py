"""export.log: what the exporters and checks said, next to the artifact, so the terminal gets one line.

torch.onnx can print hundreds of lines (TorchScript dumps its IR when it fails; dynamo reports each
pass); deploykit keeps all of it, with full tracebacks of failures: a written artifact publishes it as
``<artifact>/export.log`` with its other files; a refused export leaves the artifact folder as it was
and writes ``<out>/<name>.export.log`` beside it. The file begins with a marker line: a file of the
same name that lacks it is the user's and is kept.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from ..errors import DeployKitError
from ..store.files import open_regular
from ..store.layout import LOG
from ..store.transaction import atomic_write_bytes

MARKER = "# deploykit export log"


class ExportLog:
    def __init__(self, folder: Path, name: str):
        self.path = Path(folder).parent / f"{name}.{LOG}"  # where a refusal's log goes
        self.lines = [f"{MARKER}: {name}, {datetime.now(timezone.utc).isoformat(timespec='seconds')}"]
        self.started = time.perf_counter()

    def line(self, text: str) -> None:
        self.lines.append(f"[{time.perf_counter() - self.started:7.2f} s] {text}")

    def attempt(self, exporter: str, output: list[str], error: BaseException | None = None) -> None:
        """One exporter's captured output and, when it failed, its full traceback."""
        self.lines.append(f"--- {exporter} exporter: {'failed' if error else 'ok'} ({len(output)} lines of output)")
        self.lines.extend(f"    {line}" for line in output)
        if error is not None:
            self.lines.extend("    " + line for line in
                              "".join(traceback.format_exception(type(error), error, error.__traceback__)).splitlines())

    def failure(self, error: BaseException) -> None:
        self.lines.append(f"--- refused or failed: {type(error).__name__}: {error}")
        if error.__traceback__ is not None:
            self.lines.extend("    " + line for line in
                              "".join(traceback.format_exception(type(error), error, error.__traceback__)).splitlines())

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()

    def write(self) -> bool:
        """Write the log of a refused export alone (a written artifact publishes it with its files); never over
        a file that is not a deploykit log. True when written."""
        try:
            if self.path.exists() or self.path.is_symlink():
                # never read a FIFO or a device (it would wait for a writer): only a regular file can be ours
                if not self.path.is_file() or self.path.is_symlink():
                    return False
                with open_regular(self.path) as handle:
                    if not handle.read(len(MARKER)).decode(errors="replace").startswith(MARKER):
                        return False
            atomic_write_bytes(self.path, self.text())
        except (OSError, UnicodeError, DeployKitError):
            return False  # the log is a courtesy: never the reason an export fails
        return True
