"""The check after a build: the engine against the PyTorch reference over the recipe's sweep,
limited to the shapes its optimization profile covers, judged at the precision's tolerances.

(``deploykit verify NAME --backend trt`` runs the full harness with reports; this is the quick
post-build gate build-trt prints, using the same runners and ``compare_outputs``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..artifact import Artifact, engine_name
from ..parity.metrics import compare_outputs
from ..runners.torch_runner import TorchRunner
from .shape_profile import split_cases
from ..runners.trt_runner import TrtRunner


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
    tolerance = recipe.tolerance(precision)
    with TrtRunner(plan_path) as runner, TorchRunner(artifact.reference_model(recipe), recipe) as reference:
        inside, outside = split_cases(recipe.sweep(seed=seed), recipe, runner.sidecar.profile_obj)
        result.skipped = [c.label for c in outside]
        for case in inside:
            feed = recipe.make_inputs(case, seed)
            metrics = compare_outputs(runner.infer(feed), reference.infer(feed), tolerance)
            result.cases.append({
                "case": case.label, "shape": case.values, "passed": all(m.passed for m in metrics),
                "max_abs": max(m.max_abs for m in metrics), "min_cosine": min(m.cosine for m in metrics),
                "failures": [f"{m.name}: {f}" for m in metrics for f in m.failures],
                "trt_ms": round(runner.last_inference_time * 1e3, 3),
            })
    return result
