"""The ``deploykit`` command: a thin layer over the library (one file per command).

User errors (DeployKitError) print one line on stderr and exit non-zero; never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
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
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
