"""``export_onnx``: a recipe's module -> a checked, simplified, dynamic ONNX artifact with a manifest.

Steps: the module with its weights (the user's, exactly; seeded ones for the zoo) -> exact rewrites on
a copy (proven equal in PyTorch) -> the range analysis (guards.py: every shape guard torch.export
records, evaluated at every declared point) and a repeatability check -> export (TorchScript first, then
dynamo, under ``auto``), each export checked for specialisation to its example (specialise.py) and
compared with PyTorch where a guard is false, then checker, dynamic-axis and parity checks -> simplify (onnxsim and onnxslim, each candidate re-checked, the smallest kept) ->
exact graph optimizations for onnxruntime (optimize.py; kept only if the parity check still passes)
-> the artifact written: model.onnx, weights.pt, recipe.toml, manifest.json, export.log.

Exporter chatter never reaches the terminal: it goes to export.log next to the artifact.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch

from ..callable_module import make_callable
from ..checkpoint import buffers_bytes, state_dict_bytes
from ..environment import versions
from ..errors import DeployKitError, ExportRefused, UserCodeError, first_line
from ..onnx_graph import dims_of, opset_of
from ..parity import compare_runners, inputs_for
from ..reference import record_at_verify_shapes
from ..runners.torch_runner import FlatIO, TorchRunner
from ..store.layout import BUFFERS, LOG, MODEL, RECIPE, REFERENCE, WEIGHTS
from ..store.manifest import MANIFEST_FORMAT
from ..store.transaction import make_root, recover
from ..store.writer import check_new_artifact, new_artifact
from ..structure import describe, leaf_names
from .checks import ReferenceCheck, check_onnx_model, require_repeatable, stamp_static_output_dims
from .exporters import EXPORTERS, example_case
from .guards import ANALYSIS_BUDGET_S, start_range_analysis
from .log import ExportLog
from .options import EXPORTER_CHOICES, ExportOptions
from .optimize import optimize_for_ort
from .rewrites import apply_rewrites, functional_pooling_swapped
from .simplify import SIMPLIFIERS
from .specialise import SpecialisationCheck, check_trace
from .weights import describe_weights, reference_module

__all__ = ["EXPORTER_CHOICES", "ExportOptions", "ExportResult", "export_onnx"]


@dataclass
class ExportResult:
    name: str
    path: Path
    exporter: str
    opset: int
    opset_note: str
    rewrites: list[str]
    nodes: dict
    simplifier: str
    seconds: float
    weights: str = ""
    manifest: dict = field(repr=False, default_factory=dict)

    def summary(self) -> dict:
        return {"name": self.name, "path": str(self.path), "exporter": self.exporter, "opset": self.opset,
                "opset_note": self.opset_note, "rewrites": self.rewrites, "nodes": self.nodes,
                "simplifier": self.simplifier, "weights": self.weights, "seconds": round(self.seconds, 2),
                "simplifier_attempts": self.manifest.get("simplifier_attempts", []),
                "specialisation": self.manifest.get("checks", {}).get("specialisation"),
                "reference": {k: v for k, v in (self.manifest.get("reference") or {}).items() if k != "cases"}
                | {"cases": [c["label"] for c in (self.manifest.get("reference") or {}).get("cases", [])]}}


def _check_cases(recipe, static: bool):
    if static:
        return [example_case(recipe)]
    off_grid = [c for c in recipe.sweep() if c.label.startswith("off-grid")]
    return [recipe.case("opt"), *off_grid[:1]]


def _prove_rewrites(original, rewritten, recipe, cases) -> None:
    """The rewritten copy must equal the original in PyTorch before anything is exported from it."""
    with TorchRunner(original, recipe) as ref, TorchRunner(rewritten, recipe) as new:
        result = compare_runners(ref, new, inputs_for(recipe, cases), recipe.tolerance("fp32"), stop_at_failure=True)
    bad = result.first_failure
    if bad is not None:
        raise ExportRefused(f"rewritten module differs from the original at {bad.describe()}: "
                            f"{bad.failures[0]} (a deploykit bug: please report it)")


def export_onnx(recipe, out_dir: str | Path = "artifacts", options: ExportOptions | None = None, *,
                model: torch.nn.Module | None = None, on_step=None) -> ExportResult:
    """Export ``recipe`` into ``out_dir/<recipe.name>/`` as ``options`` say (ExportOptions(): the defaults); raise
    ExportRefused rather than write a wrong model.

    ``model``: the user's module, exported as it is (else the recipe builds it: the zoo's seeded weights, or the
    factory's module). ``options.reference_mb``: the bound on the PyTorch outputs stored in the artifact
    (reference.py; 0 stores none). ``options.analysis_budget``: seconds torch.export's range analysis may take
    (None: no limit); past them the range is recorded as sampled, not proved (guards.py). Whatever happens,
    ``export.log`` in that folder says what the exporters and checks did."""
    options = options or ExportOptions()
    options.check(recipe)
    opset, force = options.opset_for(recipe), options.force
    created = not (Path(out_dir) / recipe.name).exists()
    folder = make_root(Path(out_dir) / recipe.name)
    recover(folder)  # finish or discard a write a crash interrupted, before judging what is there
    check_new_artifact(folder, (MODEL, WEIGHTS, BUFFERS, REFERENCE, RECIPE, LOG), force)  # before any work
    log = ExportLog(folder, recipe.name)

    def step(message: str) -> None:
        log.line(message)
        if on_step:
            on_step(message)

    try:
        return _export(recipe, folder, log, step, options, opset=opset, model=model)
    except DeployKitError as exc:
        log.failure(exc)
        exc.args = (f"{exc} (details: {log.path})",) if log.write() else exc.args
        raise
    except BaseException as exc:
        log.failure(exc)
        log.write()
        raise
    finally:
        if created:  # a refused export leaves no empty folder (rmdir removes only an empty one: nothing published)
            with contextlib.suppress(OSError):
                folder.rmdir()


def _export(recipe, folder: Path, log: ExportLog, step, options: ExportOptions, *, opset, model=None) -> ExportResult:
    exporter, static, seed, checkpoint = options.exporter, options.static, options.seed, options.checkpoint
    rewrites, simplify, optimize, force = options.rewrites, options.simplify, options.optimize, options.force
    analysis_budget, reference_mb = options.analysis_budget, options.reference_mb
    started = time.perf_counter()
    step("building the module")
    model, weights = reference_module(recipe, checkpoint, seed, model)
    weights_bytes = state_dict_bytes(model)  # written as weights.pt: exactly the module as it came
    extra_bytes = buffers_bytes(model)  # and buffers.pt: the tensors a state_dict leaves out, if any
    step(describe_weights(weights))
    cases = _check_cases(recipe, static)
    applied, export_model = [], model
    if rewrites:
        export_model, applied = apply_rewrites(model)
        if applied:
            step(f"proving {len(applied)} rewrite(s) equal in PyTorch")
            _prove_rewrites(model, export_model, recipe, cases + [recipe.case("max")] * (not static))

    reference = ReferenceCheck(model, recipe, cases, recipe.tolerance("fp32"), cases[0] if static else None)
    raw, used, attempts, specialisation, structure = _export_first_correct(export_model, recipe, reference, log, step,
                                                                 opset=opset, exporter=exporter, static=static,
                                                                 seed=seed, analysis_budget=analysis_budget,
                                                                 rewrites=rewrites)
    applied = applied + attempts[-1].pop("functional_rewrites", [])  # the chosen export's swaps of function calls
    actual_opset = opset_of(raw)
    opset_note = "" if actual_opset == opset else (
        f"requested opset {opset}, the {used} exporter wrote {actual_opset} "
        "(it implements no lower opset and its down-conversion failed)")

    chosen, chosen_name, nodes, simplifiers = _simplify(raw, reference, step) if simplify else \
        (raw, "none", {"raw": len(raw.graph.node)}, [])
    ort_optimization = {"applied": False, "notes": []}
    if optimize:
        step("optimizing for onnxruntime")
        try:
            candidate, notes = optimize_for_ort(chosen, recipe)
            if notes:
                reference.require(candidate, "the onnxruntime-optimized model")
                chosen, ort_optimization = candidate, {"applied": True, "notes": notes}
        except Exception as exc:  # an optimization that breaks anything is dropped, never kept
            ort_optimization = {"applied": False, "notes": [], "reason": first_line(exc)[:300]}
            log.line(f"onnxruntime optimization dropped: {first_line(exc)}")
    nodes["final"] = len(chosen.graph.node)

    sampled = (specialisation.range or {}).get("status") == "sampled"
    stored, stored_record = record_at_verify_shapes(model, recipe, example_case(recipe).values if static else None,
                                                    sampled, reference_mb, step)
    step("writing the artifact")
    # non-persistent buffers are left out: a forward may keep a cache there (a shift mask rebuilt per input size)
    if state_dict_bytes(model) != weights_bytes:
        # deploykit runs the forward in eval mode under no_grad: what moves the weights is the forward's own code
        raise UserCodeError("the module's forward changed its own parameters or buffers while deploykit ran it "
                            "(in eval mode, without gradients): the exported graph would not match weights.pt; make "
                            "forward leave the module's state as it is; nothing was written")
    graph_io = {v.name: dims_of(v) for v in (*chosen.graph.input, *chosen.graph.output)}
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": recipe.name,
        "module": recipe.module or recipe.factory,
        "recipe": {"path": str(recipe.path), "sha256": recipe.sha256, "args": recipe.args, "call": recipe.call,
                   "copy": RECIPE},
        "versions": versions("torch", "onnx", "onnxruntime", *SIMPLIFIERS),
        "exporter": used,
        "exporter_requested": exporter,
        "exporter_attempts": attempts,
        "opset": {"requested": opset, "actual": actual_opset, "note": opset_note},
        "static": static,
        "export_shape": example_case(recipe).values,
        "rewrites": [{"path": r.path, "rewrite": r.name, "description": r.description} for r in applied],
        "inputs": [{"name": t.name, "dims": t.dim_names(), "onnx_dims": graph_io[t.name], "dtype": "float32"}
                   for t in recipe.inputs],
        "outputs": [{"name": t.name, "dims": t.dim_names(), "onnx_dims": graph_io[t.name], "dtype": "float32"}
                    for t in recipe.outputs],
        "output_structure": (describe(structure, [t.name for t in recipe.outputs])
                             if len(leaf_names(structure)) == len(recipe.outputs) else None),
        "reference": stored_record,
        "dims": {n: ({"value": d.value, "reason": d.reason} if d.is_static else
                     {"min": d.min, "opt": d.opt, "max": d.max, "multiple_of": d.multiple_of})
                 for n, d in recipe.dims.items()},
        "nodes": nodes,
        "simplifier_attempts": simplifiers,
        "ort_optimization": ort_optimization,
        "checks": {"onnx_checker": "passed", "dynamic_axes": "passed" if not static else "static",
                   "parity_cases": [c.values for c in cases], "specialisation": specialisation.as_dict()},
        "weights": weights,
        "command": " ".join(sys.argv) if sys.argv else "",
    }
    files = {WEIGHTS: weights_bytes, MODEL: chosen.SerializeToString(), RECIPE: recipe.text.encode(), LOG: log.text()}
    if extra_bytes is not None:
        files[BUFFERS] = extra_bytes
    if stored is not None:
        files[REFERENCE] = stored
    with new_artifact(folder, manifest, force) as publish:  # one step: the old artifact or this one, never a mix
        for name, data in files.items():
            publish.write(name, data)
    return ExportResult(recipe.name, folder / MODEL, used, actual_opset, opset_note,
                        [r.description for r in applied], nodes, chosen_name,
                        time.perf_counter() - started, describe_weights(weights), manifest)


def _export_first_correct(export_model, recipe, reference, log: ExportLog, step, *, opset, exporter, static, seed,
                          analysis_budget=ANALYSIS_BUDGET_S, rewrites=True):
    """The first exporter whose model is not specialised and passes every check.

    Returns (model, exporter name, attempts, SpecialisationCheck, the output structure); ExportRefused with every reason when none does."""
    example = example_case(recipe)
    example_feed = recipe.make_inputs(example)

    def example_tensors() -> list[torch.Tensor]:  # a fresh copy per call: a forward may change its input in place
        return [torch.tensor(example_feed[t.name]) for t in recipe.inputs]

    # eval, and kept so: torch.onnx restores the wrapper's mode afterwards, recursively, into the module
    flat = FlatIO.of(export_model, recipe).eval()
    # the module itself at the example, first (twice: it must give the same output on identical calls): a module
    # that rejects a declared size (a fixed-size ViT asserting its input height) is the user's to fix, not an
    # exporter failure to report; a random one is refused once the analysis can name its op
    try:
        require_repeatable(flat, example_tensors, example)
        unrepeatable = None
    except ExportRefused as exc:
        unrepeatable = exc
    # the range analysis runs in a forked child while the TorchScript exporter works here (guards.py)
    pending = None if static else start_range_analysis(flat, recipe, example_tensors(), example, analysis_budget)
    state: dict = {}

    def analysis():
        """The range analysis's verdict (waited for once); its refusal ends the export, whatever the exporter."""
        if pending is None:
            return None
        if "analysis" not in state:
            step("waiting for the range analysis (torch.export: every shape guard, at every declared value)")
            try:
                state["analysis"] = pending.result()
            except ExportRefused as exc:
                raise RangeRefused(f"{recipe.name}: refused: {exc}") from None
            log.line(f"range analysis: {state['analysis'].status}: {state['analysis'].detail}")
            cases = state["analysis"].check_cases
            state["guard_check"] = reference.at(cases) if cases else None
        return state["analysis"]

    try:
        if unrepeatable is not None:  # name the random op when torch.export found it
            ops = getattr(analysis(), "random_ops", None)
            raise ExportRefused(f"{unrepeatable}" + (f" (random ops in the traced graph: {'; '.join(ops[:2])})"
                                                     if ops else "")) from None
        chosen = _first_correct(flat, recipe, reference, log, step, example_tensors, example, analysis, state,
                                opset=opset, exporter=exporter, static=static, seed=seed, rewrites=rewrites)
        return (*chosen, flat.structure)
    finally:
        if pending is not None:
            pending.cancel()


class RangeRefused(ExportRefused):
    """The range analysis refused the module: no exporter can help."""


def _first_correct(flat, recipe, reference, log, step, example_tensors, example, analysis, state, *, opset, exporter,
                   static, seed, rewrites=True):
    attempts = []
    order = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    with tempfile.TemporaryDirectory(prefix="deploykit-") as tmp:
        for name in order:
            step(f"exporting with the {name} exporter (opset {opset})")
            path = Path(tmp) / f"{name}.onnx"
            lines: list[str] = []
            records: list = []
            specialisation = SpecialisationCheck()
            try:
                if name == "dynamo" and analysis() is not None and analysis().violated:
                    raise ExportRefused(analysis().dynamo_refusal())
                swapping = rewrites and name == "torchscript"  # TorchScript traces the forward under the swap
                with functional_pooling_swapped() if swapping else contextlib.nullcontext() as swap:
                    EXPORTERS[name](flat, example_tensors(), recipe, opset, not static, path, lines, records)
                if name == "torchscript":
                    analysis()
                    step("checking the trace for specialisation to its example")
                    specialisation = check_trace(flat, recipe, example, records, dynamic=not static, seed=seed,
                                                 analysis=analysis())
                check_onnx_model(path)
                candidate = onnx.load(str(path))
                stamped = stamp_static_output_dims(candidate, recipe)
                analysis()
                guard_check = state.get("guard_check")
                if guard_check is not None:  # first: its refusal names the guard, whatever the sweep drew
                    step(f"checking the export at the {len(guard_check.inputs)} declared shape(s) where the trace's "
                         "guards do not hold")
                    guard_check.require_guarded(candidate, analysis())
                step("checking parity with PyTorch")
                reference.require(candidate, f"the {name} export")
            except (UserCodeError, RangeRefused):
                raise  # the user's module itself failed, or no exporter can be right: not an exporter's fault
            except ExportRefused as exc:
                attempts.append({"exporter": name, "ok": False, "reason": str(exc)})
                log.attempt(name, lines, exc)
                continue
            except Exception as exc:  # the exporters raise many types; keep the first line as the reason
                attempts.append({"exporter": name, "ok": False, "reason": f"{type(exc).__name__}: {first_line(exc)}"})
                log.attempt(name, lines, exc)
                continue
            log.attempt(name, lines)
            attempts.append({"exporter": name, "ok": True, "stamped_output_dims": stamped, "log": lines[-20:]})
            if swap:  # recorded with the module swaps (the manifest's "rewrites")
                attempts[-1]["functional_rewrites"] = swap
            if analysis() is not None:
                specialisation.range = analysis().as_dict()
            if state.get("guard_check") is not None:  # simplified and optimized graphs are held to the same points
                reference.add(state["guard_check"])
            return candidate, name, attempts, specialisation
    specialised = next((a for a in attempts if a["reason"].startswith("the trace is")), None)
    if specialised is not None:  # the root cause, whatever the fallback said after it
        raise ExportRefused(f"{recipe.name}: refused: {specialised['reason']}")
    reasons = "; ".join(f"{a['exporter']}: {a['reason']}" for a in attempts)
    raise ExportRefused(f"{recipe.name}: no exporter produced a correct model ({reasons})")


def _simplify(raw, reference, step):
    """onnxsim's and onnxslim's graphs, each re-checked; the smallest that passes is kept (raw if none does).

    Returns (model, name, node counts, one record per candidate with why it was kept or dropped)."""
    nodes, passed, records = {"raw": len(raw.graph.node)}, {}, []
    for name, run in SIMPLIFIERS.items():
        step(f"simplifying with {name}")
        try:
            candidate = run(raw)
            nodes[name] = len(candidate.graph.node)
            onnx.checker.check_model(candidate, full_check=True)
            reference.require(candidate, f"the {name}-simplified model")
        except Exception as exc:  # a simplifier that breaks anything is dropped, with the reason
            nodes.setdefault(name, None)
            records.append({"simplifier": name, "ok": False, "kept": False, "reason": first_line(exc)[:300]})
            continue
        passed[name] = candidate
        records.append({"simplifier": name, "ok": True, "kept": False, "nodes": nodes[name]})
    if not passed:
        nodes["chosen"] = "none"
        return raw, "none", nodes, records
    chosen = min(passed, key=lambda n: nodes[n])  # ties: the first (onnxsim)
    for record in records:
        if record["ok"]:
            record["kept"] = record["simplifier"] == chosen
            record["reason"] = (f"smallest passing graph ({nodes[chosen]} nodes)" if record["kept"] else
                                f"{record['nodes']} nodes, more than {chosen}'s {nodes[chosen]}" if
                                record["nodes"] > nodes[chosen] else f"as small as {chosen}, which came first")
    nodes["chosen"] = chosen
    return passed[chosen], chosen, nodes, records


make_callable(__name__, "export")  # deploykit.export(...) is the Python API (callable_module.py)
