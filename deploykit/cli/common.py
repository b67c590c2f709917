"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ..recipe import default_recipe_dir

recipes_option = click.option(
    "--recipes", "recipe_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of recipe TOML files (default: ./recipes, or $DEPLOYKIT_RECIPES).",
)
out_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"),
    show_default=True, help="Artifact folder: one sub-folder per recipe.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")


def resolve_recipe_dir(recipe_dir: Path | None) -> Path:
    return recipe_dir or default_recipe_dir()


def _clean(value):
    """JSON cannot hold inf/nan: write them as strings so the output stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(data) -> str:
    return json.dumps(_clean(data), indent=2, default=str)


def echo_json(data) -> None:
    click.echo(dumps(data))


def console(stderr: bool = False):
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, soft_wrap=False, width=width)


class _NoStatus:
    """Stands in for a rich status spinner when output must stay machine-readable (--json)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *args, **kwargs):
        pass


def spinner(message: str, enabled: bool = True):
    """A rich status spinner on stderr, or a silent stand-in (e.g. under --json)."""
    return console(stderr=True).status(message, spinner="dots") if enabled else _NoStatus()
