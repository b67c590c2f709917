"""Run one function in a forked child under a time limit, and get its result back.

torch.export can spend many minutes in sympy on some real networks (timm's swin_tiny at a dynamic image
size: over 8 minutes in ``_sympy_floordiv`` for its window partitions), and a thread cannot be stopped.
A forked child can: it shares the parent's memory copy-on-write (no copy of the model, and nothing it
does to the module's Python state reaches the user's module), sends its result back pickled through a
pipe, and is killed when the limit passes. Exceptions come back as (type name, message); only those
the caller names are re-raised as such.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time

_real_exit = os._exit  # guard.py may stand in for os._exit while a forward runs


class OutOfTime(Exception):
    """The child did not finish within the limit (it has been killed)."""


def run_forked(function, seconds: float | None, passthrough: tuple = ()):
    """``function()``'s result, computed in a child process killed after ``seconds`` (None: no limit, and
    no child). An exception of a type in ``passthrough`` is raised again here with its message; any other
    becomes RuntimeError("Type: message"); OutOfTime when the limit passed."""
    if not seconds or not hasattr(os, "fork"):
        return function()
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
    chunks, deadline = [], time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise OutOfTime(f"did not finish within {seconds:g} s")
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError("the analysis process ended without a result")
    payload = pickle.loads(b"".join(chunks))  # our own child's bytes, not a file's
    if payload[0] == "ok":
        return payload[1]
    _, kind, message = payload
    for exc_type in passthrough:
        if exc_type.__name__ == kind:
            raise exc_type(message)
    raise RuntimeError(f"{kind}: {message}")
