"""One exception type for everything a user can fix (Polygraphy's PolygraphyException habit).

The CLI maps a DeployKitError to one line on stderr and a non-zero exit; anything else is a bug
and keeps its traceback.
"""


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
