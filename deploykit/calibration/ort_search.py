"""Which nodes the onnxruntime INT8 model quantizes: chosen per model by measurement.

One global rule loses: quantizing everything makes every SiLU two quantized ops and puts Q/DQ around
float-only islands; quantizing nothing but convolutions leaves Q/DQ pairs between every pair of
neighbouring convs where a quantized Add or Concat would have kept the tensor in UINT8. So, per model:

0. SiLUs become QuickGelu (ort_int8.silu_as_quickgelu), checked equal to model.onnx in onnxruntime;
1. candidates: the compute nodes (Conv/MatMul/Gemm, ort_int8.patterns) alone; the compute nodes plus
   each optional group (Sigmoid+Mul gates, Add, Concat, Resize, MaxPool, ...) one at a time; and
   everything. Each is built by onnxruntime's quantize_static (``nodes_to_quantize``) with the same
   ranges, and checked against the FP32 PyTorch reference on the calibration batches (the recipe's
   INT8 cosine/SNR floors); a candidate below them is never chosen;
2. one interleaved run of onnxruntime's profiler (deploykit.bench.profile.profile_interleaved) over
   FP32 and every accurate candidate at the opt shape gives each one's cost: the sum over its nodes
   of each node's fastest kernel time. Wall-clock p50 is not used to choose: on this machine, shared
   with other jobs, the p50 (even the fastest call) of identical 2 ms models differed by 20-30%
   between neighbouring turns, while each node's fastest of 30 runs is stable to a few percent.
   The compute-only model is profiled twice in that run; the gap between its two costs is the run's
   noise. Every group that made the compute-only model cheaper by more than ``MARGIN`` or twice
   the noise, whichever is larger, joins the combined candidate;
3. a second interleaved profile of the best of step 2 and the combined candidate; the cheaper is
   written. (The speed calibrate reports comes from its own interleaved run of every file it
   writes, pipeline.py, not from these runs.)

Bounded: 2 + (number of optional groups) + 1 quantizations and two timing runs; the groups present
in a model are few (composite: 6). Search time is recorded in the manifest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..bench.op_profile import profile_interleaved
from ..errors import DeployKitError
from ..runners.ort_runner import ort_session
from . import worth
from .ort_int8 import patterns, quantize_ort, silu_as_quickgelu

MARGIN = 0.03  # a group must cut compute-only's profiled cost by 3% to be kept (above the profile's noise)


@dataclass
class Candidate:
    label: str
    groups: list[str]
    model: onnx.ModelProto
    accuracy: dict
    accurate: bool
    cost_us: dict = field(default_factory=dict)  # profiling run -> sum of per-node fastest kernel times
    top_ops: list = field(default_factory=list)  # the most expensive op types in the last profile

    def as_dict(self) -> dict:
        return {"label": self.label, "groups": self.groups, "accuracy_calibration": self.accuracy,
                "accurate": self.accurate, "cost_us": {k: round(v, 1) for k, v in self.cost_us.items()},
                "top_ops_us": self.top_ops}


@dataclass
class OrtChoice:
    model: onnx.ModelProto
    chosen: Candidate
    candidates: list[Candidate]
    fp32_cost_us: dict
    margin: float
    seconds: float
    groups: list[dict]
    silu_rewritten: int = 0
    note: str | None = None

    def record(self) -> dict:
        return {"method": "per-model search over node groups (deploykit/calibration/ort_search.py)",
                "margin": round(self.margin, 4), "groups": self.groups, "chosen": self.chosen.label,
                "quantized_groups": ["compute", *self.chosen.groups] if self.chosen.label != "all" else "all",
                "candidates": [c.as_dict() for c in self.candidates],
                "ranked_by": "sum of per-node fastest kernel times, onnxruntime profiler, one interleaved run",
                "fp32_cost_us": {k: round(v, 1) for k, v in self.fp32_cost_us.items()},
                "silu_as_quickgelu": self.silu_rewritten,
                "seconds": round(self.seconds, 1), **({"note": self.note} if self.note else {})}


def search_ort_int8(model_path, ranges, recipe, calibration_feeds: list[dict], expected: list[dict], *,
                    kept_float: set[str] = frozenset(), threads: int | None = 2, progress=None) -> OrtChoice:
    """The fastest accurate onnxruntime INT8 model of ``model_path`` (see the module docstring)."""
    started = time.perf_counter()
    tolerance = recipe.tolerance("int8")
    opt_feed = recipe.make_inputs(recipe.case("opt"))
    fp32 = ort_session(model_path, threads=threads)
    source, rewritten = silu_as_quickgelu(onnx.load(str(model_path)))
    if rewritten:
        _check_same(fp32, ort_session(source.SerializeToString(), threads=threads), opt_feed)
    compute, optional = patterns(source, set(kept_float))

    def build(label: str, groups: list) -> Candidate:
        nodes = [*(compute.nodes if compute else ()), *(n for g in groups for n in g.nodes)]
        model = quantize_ort(source, ranges, nodes)
        measured = worth.accuracy(model.SerializeToString(), calibration_feeds, expected, threads)
        if progress:
            progress.advance()
        return Candidate(label, [g.name for g in groups], model, measured, worth.passes(measured, tolerance))

    if progress:
        progress.start(f"{recipe.name}: onnxruntime INT8 candidates", (1 if compute else 0) + len(optional) + 2)
    candidates = []
    base = build("compute", []) if compute else None
    if base is not None:
        candidates.append(base)
        candidates += [build(f"compute+{g.name}", [g]) for g in optional]
    if optional and (compute is None or len(optional) > 1):
        candidates.append(build("all", optional))

    pool = [c for c in candidates if c.accurate] or [max(candidates, key=lambda c: c.accuracy["cosine_min"])]
    note = None if any(c.accurate for c in candidates) else \
        "no candidate met the INT8 tolerance on the calibration data; the most accurate one was written"
    control = [Candidate("compute (repeat)", [], base.model, base.accuracy, base.accurate)] if base in pool else []
    first = _profile(model_path, pool + control, opt_feed, threads, "search")
    margin = MARGIN
    if control:
        a, b = base.cost_us["search"], control[0].cost_us["search"]
        margin = max(MARGIN, 2 * abs(a - b) / min(a, b))

    combined = None
    if base is not None and base in pool:
        gain = [c for c in pool if c is not base and c.label.startswith("compute+")
                and c.cost_us["search"] < base.cost_us["search"] * (1 - margin)]
        if len(gain) > 1:
            chosen_groups = [g for g in optional if g.name in {c.groups[0] for c in gain}]
            if len(chosen_groups) < len(optional):  # all groups: that is the "all" candidate already timed
                combined = build("compute+" + "+".join(g.name for g in chosen_groups), chosen_groups)
                candidates.append(combined)
    # the cheapest, or within the noise of it the one quantizing the fewest groups (fewer Q/DQ to trust)
    cheapest = min(c.cost_us["search"] for c in pool)
    near = [c for c in pool if c.cost_us["search"] <= cheapest * (1 + margin)]
    leader = min(near, key=lambda c: (len(optional) if c.label == "all" else len(c.groups), c.cost_us["search"]))
    chosen = leader
    if combined is not None and (combined.accurate or note):
        first["combined"] = _profile(model_path, [leader, combined], opt_feed, threads, "combined")["combined"]
        chosen = min((leader, combined), key=lambda c: c.cost_us["combined"])
    groups = [{"name": "compute", "nodes": len(compute.nodes)}] if compute else []
    groups += [g.as_dict() for g in optional]
    return OrtChoice(chosen.model, chosen, candidates + control, first, margin, time.perf_counter() - started, groups,
                     rewritten, note)


def _check_same(fp32, rewritten, feed: dict) -> None:
    """The QuickGelu form must compute model.onnx's function (onnxruntime fuses its own SiLUs the same way)."""
    for a, b in zip(fp32.run(None, feed), rewritten.run(None, feed)):
        if not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            raise DeployKitError("rewriting SiLU as QuickGelu changed the model's outputs "
                                 f"(max abs {float(np.abs(a - b).max()):.3g}); please report this")


def _profile(model_path, candidates: list[Candidate], feed: dict, threads, key: str, runs: int = 30) -> dict:
    """One interleaved profile of FP32 and ``candidates``; stores each cost under ``key``; ``{key: FP32's}``."""
    models = {"fp32": str(model_path), **{c.label: c.model.SerializeToString() for c in candidates}}
    profiles = profile_interleaved(models, feed, threads, runs=runs, rounds=6)
    for c in candidates:
        c.cost_us[key] = profiles[c.label]["sum_node_min_us"]
        c.top_ops = [(o.op_type, o.nodes, round(o.us, 1)) for o in profiles[c.label]["ops"][:8]]
    return {key: profiles["fp32"]["sum_node_min_us"]}
