"""``build-trt`` as a library: the CPU checks for every recipe, then each planned engine built and
checked against PyTorch. The CLI (deploykit/cli/build_trt_cmd.py) only parses options and prints."""

from __future__ import annotations

from pathlib import Path

from ..artifact import Artifact
from ..errors import DeployKitError, RecipeErrors
from .builder import build_engine
from .parity import check_engine
from .preflight import Preflight, run_preflight


def preflight_all(recipes, out_dir: str | Path, precisions: list[str], target, int8_source: str = "auto"):
    """The CPU checks for each recipe's artifact: ``(recipe, artifact, Preflight)`` triples and per-recipe errors
    (a single recipe's error is raised: there is nothing else to report)."""
    preflights, errors = [], RecipeErrors(len(recipes))

    def check(recipe):
        artifact = Artifact.open(Path(out_dir) / recipe.name)
        return recipe, artifact, run_preflight(artifact, recipe, precisions, target, int8_source)

    for recipe in recipes:
        checked = errors.attempt(recipe.name, lambda: check(recipe))
        if checked is not None:
            preflights.append(checked)
    return preflights, list(errors)


def build_all(preflights: list[tuple[object, Artifact, Preflight]], options, machine, *, check: bool = True,
              on_step=None, on_plan=None) -> tuple[list[dict], list[dict]]:
    """Build every planned engine; check each against PyTorch unless ``check`` is False.

    A failed build is recorded with its one-line reason and the others go on."""
    builds, checks = [], []
    for recipe, artifact, pre in preflights:
        for precision, plan in pre.plans.items():
            def step(message, name=recipe.name):
                if on_step:
                    on_step(f"{name}: {message}")

            if on_plan:
                on_plan(recipe.name, precision, plan)
            try:
                builds.append(build_engine(artifact, recipe, plan, pre.profile, options, machine, step).summary())
            except DeployKitError as exc:
                builds.append({"name": recipe.name, "precision": precision, "path": plan.path, "error": str(exc)})
                continue
            if check:
                step(f"checking the {precision} engine against PyTorch")
                checks.append(check_engine(artifact, recipe, precision).as_dict())
    return builds, checks
