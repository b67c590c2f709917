"""Run one function in a forked child under a time limit, and get its result back.

torch.export can spend many minutes in sympy on some real networks (timm's swin_tiny at a dynamic image
size: over 8 minutes in ``_sympy_floordiv`` for its window partitions), and a thread cannot be stopped.
A forked child can: it shares the parent's memory copy-on-write (no copy of the model, and nothing it
does to the module's Python state reaches the user's module), sends its result back pickled through a
pipe, and is killed when the limit passes. Exceptions come back as (type name, message); only those
the caller names are re-raised as such.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time

_real_exit = os._exit  # guard.py may stand in for os._exit while a forward runs


class OutOfTime(Exception):
    """The child did not finish within the limit (it has been killed)."""


class Pending:
    """A forked computation under way: ``result()`` waits for it (until its deadline), once."""

    def __init__(self, pid: int | None, read_end: int | None, deadline: float | None, passthrough: tuple,
                 value=None, error: BaseException | None = None):
        self.pid, self.read_end, self.deadline, self.passthrough = pid, read_end, deadline, passthrough
        self.value, self.error = value, error

    def cancel(self) -> None:
        """Stop the child if it is still running (the export ended before it needed the result)."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.close(self.read_end)
            os.waitpid(self.pid, 0)
            self.pid = None

    def result(self):
        if self.pid is not None:
            self._collect()
        if self.error is not None:
            raise self.error
        return self.value

    def _collect(self) -> None:
        chunks, seconds = [], self.deadline - time.monotonic()
        try:
            while True:
                # the deadline is for the computation: once its result is arriving, the rest of it is awaited
                wait = max(self.deadline - time.monotonic(), 0) if not chunks else 60.0
                ready, _, _ = select.select([self.read_end], [], [], wait)
                if not ready:
                    os.kill(self.pid, signal.SIGKILL)
                    raise OutOfTime(f"did not finish within the limit ({seconds:.0f} s left when waited for)")
                chunk = os.read(self.read_end, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        except OutOfTime as exc:
            self.error = exc
        finally:
            os.close(self.read_end)
            os.waitpid(self.pid, 0)
            self.pid = None
        if self.error is not None:
            return
        if not chunks:
            self.error = RuntimeError("the analysis process ended without a result")
            return
        payload = pickle.loads(b"".join(chunks))  # our own child's bytes, not a file's
        if payload[0] == "ok":
            self.value = payload[1]
            return
        _, kind, message = payload
        self.error = next((t(message) for t in self.passthrough if t.__name__ == kind), None) or \
            RuntimeError(f"{kind}: {message}")


def start_forked(function, seconds: float | None, passthrough: tuple = ()) -> Pending:
    """Start ``function()`` in a forked child (the parent goes on with other work); without ``seconds``, run it
    here and now."""
    if not seconds or not hasattr(os, "fork"):
        try:
            return Pending(None, None, None, passthrough, value=function())
        except passthrough as exc:
            return Pending(None, None, None, passthrough, error=exc)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave without running the parent's exit handlers
        status = 0
        try:
            os.close(read_end)
            try:
                payload = ("ok", function())
            except BaseException as exc:  # everything goes back to the parent, which decides
                payload = ("raised", type(exc).__name__, str(exc))
            data = pickle.dumps(payload)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
        except BaseException:
            status = 1
        finally:
            _real_exit(status)
    os.close(write_end)
    return Pending(pid, read_end, time.monotonic() + seconds, passthrough)
