"""``build-trt`` as a library: ``build_engines(recipes, out_dir, precisions, options) -> BuildRun``.

The CPU checks run for every recipe first; then, unless it is a dry run, the checks found a problem or this machine
cannot build (no TensorRT, no GPU), each planned engine is built and checked against PyTorch. The CLI
(deploykit/cli/build_trt_cmd.py) only parses options, prints the run and exits with ``run.exit_code``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..artifact import Artifact
from ..errors import DeployKitError, RecipeErrors
from .builder import BuildOptions, build_engine
from .onnx_support import TrtTarget, check_target, default_target
from .parity import check_engine
from .preflight import Finding, Preflight, run_preflight
from .probe import ProbeResult, probe

EXIT_PROBLEMS = 1     # CPU checks found problems, or an engine failed its parity check
EXIT_NO_TENSORRT = 3  # the checks passed but this machine cannot build (no TensorRT / no GPU)


@dataclass
class BuildRun:
    """What ``build_engines`` did: the CPU checks of every recipe (``checks``), the recipes that could not be checked
    (``errors``: name and one line each), and, when it built, each engine's summary and its check against PyTorch."""

    target: TrtTarget  # the TensorRT the checks were for
    precisions: list[str]
    machine: ProbeResult
    checks: list[Preflight]
    errors: list[dict]
    dry_run: bool = False
    builds: list[dict] | None = None  # None: nothing was built (a dry run, problems, or no TensorRT/GPU here)
    engine_checks: list[dict] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for p in self.checks for f in p.findings]

    @property
    def buildable(self) -> bool:
        """The engines are built: not a dry run, the checks are clean, and this machine has TensorRT and a GPU."""
        return not self.dry_run and not self.findings and not self.errors and self.machine.ok

    @property
    def failed(self) -> list[dict]:
        """The builds that failed and the engines that failed their check."""
        return [b for b in self.builds or () if b.get("error")] + [c for c in self.engine_checks if not c.get("passed")]

    @property
    def exit_code(self) -> int:
        if self.findings or self.errors:
            return EXIT_PROBLEMS
        if self.dry_run:
            return 0
        if not self.machine.ok:
            return EXIT_NO_TENSORRT
        return EXIT_PROBLEMS if self.failed else 0

    @property
    def passed(self) -> bool:
        """The checks are clean and (unless a dry run) every engine was built and passed its check."""
        return self.exit_code == 0

    def to_dict(self) -> dict:
        """What ``deploykit build-trt --json`` prints."""
        report = {"tensorrt_target": self.target.version, "tensorrt_assumed": self.target.assumed,
                  "precisions": self.precisions, "machine": self.machine.as_dict(),
                  "checks": [p.as_dict() for p in self.checks], "errors": self.errors}
        if self.builds is not None:
            report.update(builds=self.builds, engine_checks=self.engine_checks)
        return report


def build_engines(recipes, out_dir: str | Path = "artifacts", precisions=("fp32",), options: BuildOptions | None = None,
                  *, trt_version: str | None = None, int8_source: str = "auto", dry_run: bool = False,
                  check: bool = True, on_checked=None, on_plan=None, on_step=None) -> BuildRun:
    """The CPU checks for each recipe's artifact in ``out_dir``, then its engines at ``precisions`` built and checked.

    ``trt_version``: the TensorRT the checks target (default: the installed one, else the pinned table's); on a
    machine that builds it must be the installed one. ``check=False`` skips each engine's parity check.
    ``on_checked(run)`` is called once the checks are done, before any build; ``on_plan(name, precision, plan)``
    before each build; ``on_step(message)`` as a build goes. A single recipe's error is raised (nothing else to
    report); with several, each is recorded in ``errors`` and the others are checked."""
    options = options or BuildOptions()
    options.check()
    precisions = list(precisions) or ["fp32"]
    machine = probe()
    target = resolve_target(trt_version, machine, dry_run)
    preflights, errors = preflight_all(recipes, out_dir, precisions, target, int8_source)
    run = BuildRun(target, precisions, machine, [p for _, _, p in preflights], errors, dry_run)
    if on_checked:
        on_checked(run)
    if not run.buildable:
        return run
    run.builds, run.engine_checks = _build_all(preflights, options, machine, check=check, on_step=on_step,
                                               on_plan=on_plan)
    return run


def resolve_target(trt_version: str | None, machine: ProbeResult, dry_run: bool = False) -> TrtTarget:
    """The TensorRT the checks are for: ``trt_version``, else the installed one, else the pinned table's."""
    target = TrtTarget(trt_version) if trt_version else default_target(machine.tensorrt_version)
    check_target(target)
    if trt_version and machine.ok and not dry_run and target.parts[:2] != TrtTarget(machine.tensorrt_version).parts[:2]:
        raise DeployKitError(f"--trt-version {trt_version} but TensorRT {machine.tensorrt_version} is installed; "
                             "engines are built by the installed TensorRT (drop --trt-version)")
    return target


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


def _build_all(preflights: list[tuple[object, Artifact, Preflight]], options, machine, *, check: bool = True,
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
