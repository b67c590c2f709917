"""The CPU checks ``deploykit build-trt`` runs before any build (and all ``--dry-run`` runs).

For one artifact and the precisions asked for: the optimization profile against the recipe, the
precision path's input files (TensorRT 10 vs 11), every node of each ONNX that would be built
against the parser table, the ONNX inputs against the profile, and the calibration cache header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..artifact import Artifact
from ..errors import DeployKitError
from ..store.files import sha256_file
from .calibrator import load_cache
from .compat import check_dims, check_model
from .onnx_support import TrtTarget
from .precision import PrecisionPlan, plan_precision
from .problems import Problem
from .shape_profile import Profile, profile_from_recipe, validate_profile


@dataclass
class Finding:
    name: str         # recipe
    file: str         # the artifact file the problem is in ("recipe" for profile problems)
    problem: Problem

    def as_dict(self) -> dict:
        return {"name": self.name, "file": self.file, **self.problem.as_dict()}


@dataclass
class Preflight:
    name: str
    target: TrtTarget
    profile: Profile
    plans: dict[str, PrecisionPlan] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    checked_files: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {"name": self.name, "tensorrt": self.target.version, "tensorrt_assumed": self.target.assumed,
                "profile": self.profile.as_dict(), "plans": {p: plan.as_dict() for p, plan in self.plans.items()},
                "checked_files": self.checked_files, "clean": self.clean,
                "problems": [f.as_dict() for f in self.findings]}


def available_files(artifact: Artifact) -> set[str]:
    return {p.name for p in artifact.dir.iterdir() if p.is_file()}


def run_preflight(artifact: Artifact, recipe, precisions: list[str], target: TrtTarget,
                  int8_source: str = "auto") -> Preflight:
    artifact.check_recipe(recipe)
    profile = profile_from_recipe(recipe)
    result = Preflight(recipe.name, target, profile)

    def add(file: str, problem: Problem) -> None:
        named = Problem(problem.where, problem.check, _name_commands(problem.message, recipe.name),
                        _name_commands(problem.fix, recipe.name))
        result.findings.append(Finding(recipe.name, file, named))

    for problem in validate_profile(profile, recipe):
        add("recipe", problem)
    files = available_files(artifact)
    model_problems: dict[str, list[Problem]] = {}
    for precision in precisions:
        try:
            plan = plan_precision(precision, target, files, int8_source)
        except DeployKitError as exc:
            add("-", Problem(f"{precision} engine", "precision", str(exc),
                             f"run `deploykit calibrate {recipe.name}` first, or build another precision"))
            continue
        result.plans[precision] = plan
        if plan.onnx not in model_problems:
            model_problems[plan.onnx] = _check_onnx(artifact, plan.onnx, target, profile)
            result.checked_files.append(plan.onnx)
            for problem in model_problems[plan.onnx]:
                add(plan.onnx, problem)
        if plan.calibration_cache:
            cache = artifact.path(plan.calibration_cache)
            try:  # the cache must name the TensorRT that will read it (unknown when TensorRT is not here)
                load_cache(cache, None if target.assumed else target.version)
            except DeployKitError as exc:
                add(plan.calibration_cache, Problem(plan.calibration_cache, "calibration", str(exc),
                                                    f"re-run `deploykit calibrate {recipe.name} --trt-version {target.version}`, "
                                                    "or build INT8 from the Q/DQ model (--int8-source qdq)"))
    return result


def _name_commands(text: str, name: str) -> str:
    """The library's messages say `deploykit export NAME`; name the recipe for the user."""
    return re.sub(r"(`deploykit [\w-]+) NAME", rf"\1 {name}", text)


def _check_onnx(artifact: Artifact, filename: str, target: TrtTarget, profile: Profile) -> list[Problem]:
    path = artifact.path(filename)
    recorded = artifact.manifest["files"].get(filename)
    if recorded is not None and sha256_file(path) != recorded:
        return [Problem(filename, "integrity", "the file does not match the sha256 in manifest.json (modified after it was made)",
                        "re-create it with the deploykit command that made it")]
    return check_model(path, target) + check_dims(path, profile)
