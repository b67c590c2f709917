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


def _set_forward_timeout(ctx, param, value):
    from ..guard import set_forward_timeout

    set_forward_timeout(value)
    return value


forward_timeout_option = click.option(
    "--forward-timeout", type=click.FloatRange(min=0), default=600.0, show_default=True, metavar="SECONDS",
    expose_value=False, callback=_set_forward_timeout,
    help="Time limit for one call of the module's forward (0: none); past it, one line and exit 3.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")


def resolve_recipe_dir(recipe_dir: Path | None) -> Path:
    return recipe_dir or default_recipe_dir()


def select_recipes(names, all_, recipe_dir, module=None, recipe_path=None, out_dir=None):
    """The recipes a command works on: names, --all, or a hand-written --recipe (for --module).

    A name is looked up in the recipe folder, then in the artifact folder (``OUT/NAME/recipe.toml``,
    the copy every export writes): so after `deploykit export --module ...` every command takes NAME."""
    if recipe_path is not None:
        if names or all_:
            raise DeployKitError("give either recipe names/--all or --recipe, not both")
        recipe = load_recipe(recipe_path)
        if module and recipe.factory != module:
            # the recipe names its factory; --module, when given too, must agree so the user knows what gets built
            raise DeployKitError(f"{recipe_path}: factory is {recipe.factory or recipe.module!r}, --module says {module!r}")
        return [recipe]
    if module:
        raise DeployKitError("--module needs --recipe here (or export it first: `deploykit export --module ...`, "
                             "then use the artifact's name)")
    if all_ and names:
        raise DeployKitError("give recipe names or --all, not both")
    if all_:
        return load_all(resolve_recipe_dir(recipe_dir))
    if not names:
        raise DeployKitError("name at least one recipe (see `deploykit list`), or pass --all")
    return [resolve_recipe(n, recipe_dir, out_dir) for n in names]


def resolve_recipe(name: str, recipe_dir=None, out_dir=None):
    """``name``'s recipe: the recipe folder's, else the copy in the artifact ``out_dir/name/``."""
    from ..artifact import RECIPE

    folder = resolve_recipe_dir(recipe_dir)
    if (folder / f"{name}.toml").is_file() or out_dir is None or not (Path(out_dir) / name / RECIPE).is_file():
        return find_recipe(name, folder)
    return load_recipe(Path(out_dir) / name / RECIPE)


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
