"""The user's forward runs under limits: a time limit, exits it asks for become errors, no stdin to wait on.

deploykit runs the user's module in its own process (it must: tracing needs the live module), so the
guard is what a process can do for itself:

- a time limit per forward call (``--forward-timeout``, default 600 s): SIGALRM raises ForwardTimeout
  in the forward's Python code (also inside a blocking read); a forward stuck in native code, which
  never returns to Python, is ended by a watchdog thread GRACE_S later, with the same one line and exit 3;
- ``sys.exit()`` and ``os._exit()`` called from Python inside the forward raise UserCodeError instead of
  ending the process (exit 0 with nothing written, before); an ``_exit`` from native code cannot be
  intercepted by anything in-process;
- ``sys.stdin`` reads end-of-file, so an ``input()`` fails at once instead of waiting for a terminal;
- the current directory is restored after each call: a forward that changes it must not move a
  relative ``--out`` (or any other relative path deploykit holds).

Under torch.compile/torch.export's tracer (``is_compiling``) the guard steps aside: those trace the
forward's Python rather than run it, and the outermost eager call already holds the limit.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading

from .errors import DeployKitError, UserCodeError, _user_frame, first_line

DEFAULT_FORWARD_TIMEOUT_S = 600.0
GRACE_S = 10.0
TIMEOUT_EXIT_CODE = 3
_settings = {"seconds": DEFAULT_FORWARD_TIMEOUT_S, "depth": 0}
_real_exit = os._exit


class ForwardTimeout(UserCodeError):
    exit_code = TIMEOUT_EXIT_CODE


def set_forward_timeout(seconds: float | None) -> None:
    """The limit for every later forward call in this process; None or 0: no limit."""
    _settings["seconds"] = seconds or None


def _timeout_message(seconds: float) -> str:
    return (f"the module's forward did not return within {seconds:g} s (deploykit's --forward-timeout): "
            "it may loop, wait for input or a lock; raise the limit if it is just slow")


def _compiling() -> bool:
    try:
        import torch

        return bool(torch.compiler.is_compiling())
    except (ImportError, AttributeError):
        return False


def _user_exit(code=0):
    raise UserCodeError(f"the module's code called os._exit({code}); deploykit stopped instead of exiting")


@contextlib.contextmanager
def no_os_exit():
    """``os._exit`` from the user's Python code raises UserCodeError (it would end deploykit, exit status and all)."""
    exit_ = os._exit
    os._exit = _user_exit
    try:
        yield
    finally:
        os._exit = exit_


@contextlib.contextmanager
def guarded_forward():
    """Run one forward call of the user's module under the limits above (nested calls share the outer one)."""
    if _settings["depth"] or _compiling():
        yield
        return
    seconds = _settings["seconds"]
    timed = seconds is not None and threading.current_thread() is threading.main_thread()
    if timed:
        def on_alarm(signum, frame):
            raise ForwardTimeout(_timeout_message(seconds))

        def hard_stop():  # the forward is in native code and never came back for the signal
            sys.stderr.write(f"error: {_timeout_message(seconds)}\n")
            sys.stderr.flush()
            _real_exit(TIMEOUT_EXIT_CODE)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        watchdog = threading.Timer(seconds + GRACE_S, hard_stop)
        watchdog.daemon = True
        watchdog.start()
    stdin, cwd = sys.stdin, os.getcwd()
    sys.stdin = io.StringIO()
    _settings["depth"] += 1
    try:
        with no_os_exit():
            yield
    except SystemExit as exc:
        raise UserCodeError(f"the module's forward called sys.exit({exc.code!r}); deploykit stopped "
                            "instead of exiting") from None
    finally:
        _settings["depth"] -= 1
        sys.stdin = stdin
        try:
            moved = os.getcwd() != cwd
        except OSError:  # the forward removed the folder it moved to
            moved = True
        if moved:
            os.chdir(cwd)
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            watchdog.cancel()


def exit_now_if_threads_linger(code: int) -> None:
    """After the command's work: a non-daemon thread the user's code started would keep the process alive
    for ever (Python joins them at exit); flush and end the process with ``code`` instead."""
    current = threading.current_thread()
    if not any(t.is_alive() and not t.daemon and t is not current for t in threading.enumerate()):
        return
    import atexit

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    atexit._run_exitfuncs()  # what a normal exit would run (temporary folders, logging), then the end
    _real_exit(code)


@contextlib.contextmanager
def user_code(what: str):
    """Run a piece of the user's code; any exception it raises becomes one UserCodeError line naming
    ``what`` (e.g. "the factory mypkg.nets:make_block" or "the module's forward at B=2 H=37 W=53") and the
    user's source line. DeployKitErrors and KeyboardInterrupt pass through unchanged; SystemExit (the user's
    ``sys.exit``) is an error too: it would otherwise end deploykit with the user's code and nothing written."""
    try:
        with no_os_exit():
            yield
    except DeployKitError:
        raise
    except SystemExit as exc:
        raise UserCodeError(f"{what} called sys.exit({exc.code!r}){_user_frame(exc.__traceback__)}; "
                            "deploykit stopped instead of exiting") from None
    except Exception as exc:  # anything the user's code raises is theirs to fix: one line, not a traceback
        raise UserCodeError(f"{what} raised {type(exc).__name__}: {first_line(exc)}{_user_frame(exc.__traceback__)}") from exc


@contextlib.contextmanager
def at_declared_shape(what: str):
    """``user_code`` for the user's forward at a shape the recipe declares: the line also gives the usual
    cause (a module whose input size is fixed) and what to do."""
    try:
        with user_code(what):
            yield
    except UserCodeError as exc:
        if exc.__cause__ is None:  # the guard's own (a time limit, an exit): not about the shape
            raise
        raise UserCodeError(f"{exc}; the module does not run at every declared shape: if its input size is fixed, "
                            "declare those axes static (--dim SYM=N), or build it for dynamic sizes") from exc.__cause__
