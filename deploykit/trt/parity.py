"""The check after a build: the engine against the PyTorch reference over the recipe's sweep,
limited to the shapes its optimization profile covers, judged at the precision's tolerances.

(``deploykit verify NAME --backend trt`` runs the full harness with reports; this is the quick
post-build gate build-trt prints, through the same parity engine.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..artifact import Artifact
from ..parity import compare_runners, inputs_for
from ..store.layout import engine_name
from .runner import TrtRunner
from .shape_profile import split_cases


@dataclass
class EngineCheck:
    name: str
    precision: str
    cases: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sweep cases outside the profile

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c["passed"] for c in self.cases)

    def as_dict(self) -> dict:
        return {"name": self.name, "precision": self.precision, "passed": self.passed, "cases": self.cases,
                "skipped": self.skipped}


def check_engine(artifact: Artifact, recipe, precision: str, seed: int = 0) -> EngineCheck:
    plan_path = artifact.path(engine_name(precision))
    result = EngineCheck(recipe.name, precision)
    reference = artifact.reference(recipe)  # the outputs export stored: no user code on the GPU machine
    with TrtRunner(plan_path) as runner:
        inside, outside = split_cases(recipe.sweep(seed=seed), recipe, runner.sidecar.profile_obj)
        result.skipped = [c.label for c in outside]
        inputs = inputs_for(recipe, inside, seed)
        with reference.runner(recipe, [i.feed for i in inputs], "the engine's sweep shapes") as torch_runner:
            parity = compare_runners(torch_runner, runner, inputs, recipe.tolerance(precision),
                                     floor=precision == "fp32")
    result.cases = [{"case": c.label, "shape": c.shape, "passed": c.passed, "max_abs": c.max_abs,
                     "min_cosine": c.min_cosine, "failures": c.failures,
                     "trt_ms": round(c.backend_ms, 3) if c.backend_ms is not None else None} for c in parity.cases]
    return result
