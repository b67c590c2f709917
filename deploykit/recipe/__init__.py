"""Recipes: what to build and how to check it, as validated data (``recipes/<name>.toml``).

    spec.py       the validated data (Recipe, DimSpec, TensorSpec, Tolerance, CalibrationSpec)
    load.py       TOML -> Recipe, every problem as ``<file>: <field>: <what is wrong>``
    shapes.py     symbolic dims (``"4*H"``) and the shape sweep
    synthetic.py  image-like input fields
    factory.py    ``pkg.mod:factory`` -> the user's callable
    listing.py    ``list_recipes(folder) -> RecipeListing``: the library call under ``deploykit list``
"""

from .factory import import_factory
from .listing import RecipeListing, list_recipes
from .load import default_recipe_dir, find_recipe, load_all, load_recipe, recipe_from_bytes, recipe_names
from ..store.layout import PRECISIONS
from .spec import (CALIBRATION_METHODS, DEFAULT_TOLERANCES, DISTRIBUTIONS, CalibrationSpec, DimSpec, Recipe,
                   RecipeError, TensorSpec, Tolerance)

__all__ = ["CALIBRATION_METHODS", "DEFAULT_TOLERANCES", "DISTRIBUTIONS", "PRECISIONS", "CalibrationSpec", "DimSpec",
           "Recipe", "RecipeError", "RecipeListing", "TensorSpec", "Tolerance", "default_recipe_dir", "find_recipe",
           "import_factory", "list_recipes", "load_all", "load_recipe", "recipe_from_bytes", "recipe_names"]
