"""``deploykit list`` as a library call: every recipe of a folder, described, or with the one line saying why not.

    listing = list_recipes()              # the default folder (./recipes, or $DEPLOYKIT_RECIPES)
    listing.rows                          # what `deploykit list --json` prints
    listing.failed                        # the rows of recipes that could not be read or built
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployKitError
from .load import default_recipe_dir, load_recipe, recipe_names


@dataclass
class RecipeListing:
    """The recipes of ``folder`` in name order: a ``describe`` row each, or ``{"name", "error"}`` for one that
    could not be loaded or built (the others are still listed)."""

    folder: Path
    rows: list[dict]  # a JSON list as it is: what `deploykit list --json` prints

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if "error" in row]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def describe(recipe) -> dict:
    """One recipe as ``deploykit list`` shows it: inputs and outputs with symbolic dims, the dynamic axes
    (min/opt/max/multiple_of), the static ones with their reason, and the module's parameter count (the module
    is built for it); a module that cannot be built gives ``{"name", "module", "error"}``."""
    try:
        model = recipe.build()
    except DeployKitError as exc:  # one recipe whose module cannot be built does not hide the others
        return {"name": recipe.name, "module": recipe.module or recipe.factory, "error": str(exc)}
    return {
        "name": recipe.name,
        "module": recipe.module or recipe.factory,
        "summary": recipe.summary,
        "inputs": {t.name: t.dim_names() for t in recipe.inputs},
        "outputs": {t.name: t.dim_names() for t in recipe.outputs},
        "dynamic_axes": {n: [d.min, d.opt, d.max, d.multiple_of] for n, d in recipe.dims.items() if not d.is_static},
        "static_axes": {n: {"value": d.value, "reason": d.reason} for n, d in recipe.dims.items() if d.is_static},
        "parameters": sum(p.numel() for p in model.parameters()),
        "opset": recipe.opset,
    }


def list_recipes(folder: str | Path | None = None) -> RecipeListing:
    """Every ``*.toml`` of ``folder`` (default: ``default_recipe_dir()``), described; an invalid recipe is a row
    with its one-line reason, never an exception."""
    folder = Path(folder) if folder is not None else default_recipe_dir()
    rows = []
    for name in recipe_names(folder):
        try:
            rows.append(describe(load_recipe(folder / f"{name}.toml")))
        except DeployKitError as exc:
            rows.append({"name": name, "error": str(exc)})
    return RecipeListing(folder, rows)
