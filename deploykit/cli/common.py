"""Options and output helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import DeployKitError
from ..files import dumps
from ..recipe import default_recipe_dir, find_recipe, load_all, load_recipe

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


def select_recipes(names, all_, recipe_dir, module=None, recipe_path=None):
    """The recipes a command works on: zoo names, --all, or a user module with its recipe."""
    if module or recipe_path:
        if not (module and recipe_path):
            raise DeployKitError("--module and --recipe go together (a user module needs its recipe)")
        if names or all_:
            raise DeployKitError("give either recipe names/--all or --module with --recipe, not both")
        recipe = load_recipe(recipe_path)
        if recipe.factory is None or recipe.factory != module:
            # The recipe names its factory; --module must agree so the user knows what gets built.
            raise DeployKitError(f"{recipe_path}: factory is {recipe.factory or recipe.module!r}, --module says {module!r}")
        return [recipe]
    if all_ and names:
        raise DeployKitError("give recipe names or --all, not both")
    if all_:
        return load_all(resolve_recipe_dir(recipe_dir))
    if not names:
        raise DeployKitError("name at least one recipe (see `deploykit list`), or pass --all")
    return [find_recipe(n, resolve_recipe_dir(recipe_dir)) for n in names]


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
