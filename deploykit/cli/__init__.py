"""The ``deploykit`` command: a thin layer over the library (one file per command).

User errors (DeployKitError) print one line on stderr and exit non-zero; never a traceback.
"""

from __future__ import annotations

import errno
import importlib
import sys

import click

from ..version import __version__
from ..errors import DeployKitError

_COMMANDS = {
    "list": "list_cmd",
    "export": "export_cmd",
    "verify": "verify_cmd",
    "calibrate": "calibrate_cmd",
    "build-trt": "build_trt_cmd",
    "bench": "bench_cmd",
    "serve": "serve_cmd",
    "package": "package_cmd",
}


# A full disk, a quota, a read-only filesystem: the machine's state, not a deploykit bug, wherever it happens
# (deploykit's own writes already say so in one line; this covers libraries writing temporary files).
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
# a path the system refuses as given (4088 characters, a symlink loop): the user's input, one line
_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.ELOOP}


def _os_error_line(exc: OSError) -> str:
    """One line for an OSError of the machine's state: the file when known, else where libraries write."""
    import tempfile

    if exc.filename:
        name = str(exc.filename)
        where = (name if len(name) <= 160 else f"{name[:80]}...{name[-60:]} ({len(name)} characters)") + ": "
        return f"{where}{exc.strerror}"
    # no file named: a library's temporary file (onnxruntime, torch, onnxsim write there), or a pipe
    return f"{exc.strerror} (no file named: most likely the temporary folder {tempfile.gettempdir()}, set by TMPDIR)"


class LazyGroup(click.Group):
    """Imports a command's module only when it runs, so `deploykit --help` stays fast and light."""

    def list_commands(self, ctx):
        return [n for n in _COMMANDS if self._module(n) is not None]

    def get_command(self, ctx, name):
        module = self._module(name)
        return getattr(module, "command", None) if module else None

    @staticmethod
    def _module(name):
        if name not in _COMMANDS:
            return None
        try:
            return importlib.import_module(f"{__name__}.{_COMMANDS[name]}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{_COMMANDS[name]}":
                return None  # command not shipped in this version
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DeployKitError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno not in _ENVIRONMENT_ERRNOS | _PATH_ERRNOS:
                raise  # anything else from the OS is a bug here: keep its traceback
            click.echo(f"error: {_os_error_line(exc)}", err=True)
            ctx.exit(2)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Usage errors (an unknown option, a bad value) as one line naming the command's --help, like every
        other error, instead of click's usage block."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "deploykit"
            click.echo(f"error: {exc.format_message()} (see `{command} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        # not standalone, click returns ctx.exit()'s code, or the command's own return value (None here)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="deploykit")
def main():
    """deploykit: take PyTorch vision modules to production.

    \b
    Examples:
      deploykit list                      # the zoo and its recipes
      deploykit export cbam --opset 17    # ONNX with dynamic B/H/W, simplified, checked
      deploykit verify cbam               # parity with PyTorch over the recipe's shape range
      deploykit export --all && deploykit verify --all
    """


def run():  # console-script entry point
    from ..guard import exit_now_if_threads_linger

    for stream in (sys.stdout, sys.stderr):
        # a folder name the locale cannot encode (PYTHONIOENCODING=ascii, a Latin-1 terminal) must not turn
        # an output line into a UnicodeEncodeError traceback: it is printed with backslash escapes instead
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit as exc:
        # the work is done: a thread the user's module started must not keep the process alive
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        exit_now_if_threads_linger(code)
        raise
