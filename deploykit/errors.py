"""One exception type for everything a user can fix (Polygraphy's PolygraphyException habit).

The CLI maps a DeployKitError to one line on stderr and a non-zero exit; anything else is a bug
and keeps its traceback.
"""

import contextlib


class DeployKitError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    exit_code = 2


class BackendUnavailable(DeployKitError):
    """A backend cannot run here (no GPU, no TensorRT, a provider that would fall back to CPU, a file
    not made yet); ``runtime.load(backend="auto")`` records the reason and tries the next one."""


class ExportRefused(DeployKitError):
    """deploykit will not write this model because it would be silently wrong."""

    exit_code = 1


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type when the message is empty.

    Third-party libraries (onnx, onnxruntime, torch.onnx, TensorRT) raise many types with long
    messages; deploykit reports the first line and keeps the rest out of the terminal."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UserCodeError(DeployKitError):
    """The user's own code (a factory, a constructor, a forward) raised: reported as one line naming it."""


def _user_frame(tb) -> str:
    """``file:line`` of the innermost frame outside deploykit, torch and the standard library: the user's line."""
    import os
    import sysconfig
    import traceback

    skip = [os.path.dirname(__file__), sysconfig.get_paths()["stdlib"]]
    try:
        import torch

        skip.append(os.path.dirname(torch.__file__))
    except ImportError:
        pass
    for frame in reversed(traceback.extract_tb(tb)):
        if not any(frame.filename.startswith(s) for s in skip):
            return f" at {frame.filename}:{frame.lineno}"
    return ""


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


class RecipeErrors(list):
    """The errors of one command over several recipes, one entry per recipe that failed (the others go on);
    with a single recipe there is nothing else to report, and its error is raised as it is."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def attempt(self, name: str, run):
        """``run()``'s result, or None after recording its DeployKitError under ``name``."""
        try:
            return run()
        except DeployKitError as exc:
            if self.total == 1:
                raise
            self.append({"name": name, "error": str(exc)})
            return None
