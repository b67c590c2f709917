"""Options and output helpers shared by the commands.

Every option that more than one command takes is defined here once, with its name, type and default; where the
commands say different things about it (what --all covers, what --seed seeds), the command passes its own help.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import DeployKitError
from ..recipe import default_recipe_dir, load_all, load_recipe
from ..recipe.load import check_module, resolve_recipe
from ..store.files import dumps
from ..store.layout import PRECISIONS

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


def recipe_names_argument(all_help: str):
    """NAMES... and --all: the recipes a command works on (``select_recipes`` resolves them)."""
    def decorate(command):
        command = click.option("--all", "all_", is_flag=True, help=all_help)(command)
        return click.argument("names", nargs=-1)(command)

    return decorate


def module_option(help: str = "Your module's factory: runs the factory NAME's artifact names when it is this one "
                              "(see --trust-code)."):
    return click.option("--module", "module", default=None, metavar="PKG.MOD:FACTORY", help=help)


def recipe_file_option(help: str):
    """--recipe: a recipe TOML file of the user's (beside --module / --onnx)."""
    return click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help=help)


def checkpoint_option(help: str):
    return click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help)


def backend_option(capability: str, default: str, help: str):
    """--backend: the choices are the backend table's column ``capability`` (backends.choices)."""
    from ..backends import choices  # the table loads torch: only the commands that take --backend import it

    return click.option("--backend", type=click.Choice(choices(capability)), default=default, show_default=True,
                        help=help)


def precision_option(help: str):
    return click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True, help=help)


def shape_option(help: str):
    """--shape SYM=N,... (repeatable), parsed against each recipe's symbols by the command."""
    return click.option("--shape", "shapes", multiple=True, metavar="SYM=N,...", help=help)


def threads_option(help: str):
    return click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help=help)


def seed_option(help: str):
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def trt_version_option(help: str):
    return click.option("--trt-version", default=None, metavar="X.Y", help=help)


def force_option(what: str = "files"):
    """--force, one definition for every command that writes: what it may overwrite, in the command's words."""
    return click.option("--force", is_flag=True,
                        help=f"Overwrite {what} deploykit did not write (or that changed since).")


trust_option = click.option(
    "--trust-code", is_flag=True,
    help="Run the factory an artifact's own recipe.toml names (a recipe-free export's). Without it (or --module "
         "naming that factory) deploykit runs no code an artifact names: artifact folders are shared and unpacked.")


def resolve_recipe_dir(recipe_dir: Path | None) -> Path:
    return recipe_dir or default_recipe_dir()


def select_recipes(names, all_, recipe_dir, module=None, recipe_path=None, out_dir=None, trust_code=False):
    """The recipes a command works on: names, --all, or a hand-written --recipe (for --module).

    A name is looked up in the recipe folder, then in the artifact folder (``OUT/NAME/recipe.toml``,
    the copy every export writes): so after `deploykit export --module ...` every command takes NAME
    (with that --module again, or --trust-code, before the artifact's factory is run)."""
    if recipe_path is not None:
        if names or all_:
            raise DeployKitError("give either recipe names/--all or --recipe, not both")
        recipe = load_recipe(recipe_path)
        check_module(recipe, module, recipe_path)
        return [recipe]
    if module and (all_ or not names):
        raise DeployKitError("--module needs --recipe, or the name of the artifact it was exported to "
                             "(`deploykit export --module ...`, then NAME --module ...)")
    if all_ and names:
        raise DeployKitError("give recipe names or --all, not both")
    if all_:
        return load_all(resolve_recipe_dir(recipe_dir))
    if not names:
        raise DeployKitError("name at least one recipe (see `deploykit list`), or pass --all")
    return [resolve_recipe(n, recipe_dir, out_dir, module, trust_code) for n in names]


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
