"""One exception type for everything a user can fix (Polygraphy's PolygraphyException habit).

The CLI maps a DeployKitError to one line on stderr and a non-zero exit; anything else is a bug
and keeps its traceback.
"""


class DeployKitError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    exit_code = 2


class ExportRefused(DeployKitError):
    """deploykit will not write this model because it would be silently wrong."""

    exit_code = 1
