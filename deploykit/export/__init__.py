"""``export_onnx``: a recipe's module -> a checked, simplified, dynamic ONNX artifact with a manifest.

Steps: seeded (or checkpoint) weights -> exact rewrites on a copy (proven equal in PyTorch) ->
export (TorchScript first, then dynamo, under ``auto``) -> checker, dynamic-axis and parity checks ->
simplify (onnxsim, else onnxslim, else raw; each candidate re-checked) -> exact graph optimizations for
onnxruntime (optimize.py; kept only if the parity check still passes) -> atomic writes, manifest last.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch

from ..runners.torch_runner import FlatIO
from ..artifact import MANIFEST, MANIFEST_FORMAT, MODEL, WEIGHTS, state_dict_bytes
from ..parity import compare_runners, inputs_for
from ..environment import versions
from ..errors import DeployKitError, ExportRefused, UserCodeError, first_line
from ..onnx_graph import dims_of, opset_of
from ..files import atomic_write_bytes, atomic_write_json, check_can_overwrite, ensure_dir, read_json, sha256_file
from .rewrites import apply_rewrites
from ..runners.torch_runner import TorchRunner
from .weights import load_checkpoint, seeded_model
from .checks import ReferenceCheck, check_onnx_model, stamp_static_output_dims
from .exporters import EXPORTERS, example_case
from .optimize import optimize_for_ort
from .simplify import SIMPLIFIERS

EXPORTER_CHOICES = ("auto", "torchscript", "dynamo")


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
    manifest: dict = field(repr=False)

    def summary(self) -> dict:
        return {"name": self.name, "path": str(self.path), "exporter": self.exporter, "opset": self.opset,
                "opset_note": self.opset_note, "rewrites": self.rewrites, "nodes": self.nodes,
                "simplifier": self.simplifier, "seconds": round(self.seconds, 2)}


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


def _existing_hashes(folder: Path) -> dict:
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return {}
    try:
        return read_json(manifest_path).get("files", {})
    except DeployKitError:
        return {}


def export_onnx(recipe, out_dir: str | Path = "artifacts", *, opset: int | None = None, exporter: str = "auto",
                simplify: bool = True, static: bool = False, rewrites: bool = True, force: bool = False,
                checkpoint: str | Path | None = None, seed: int = 0, on_step=None,
                optimize: bool = True) -> ExportResult:
    """Export ``recipe`` into ``out_dir/<recipe.name>/``; raise ExportRefused rather than write a wrong model."""
    step = on_step or (lambda message: None)
    if exporter not in EXPORTER_CHOICES:
        raise DeployKitError(f"--exporter must be one of {', '.join(EXPORTER_CHOICES)}, got {exporter!r}")
    opset = recipe.opset if opset is None else opset
    if not 13 <= opset <= 23:
        raise DeployKitError(f"opset {opset} is not supported (use 13..23; the recipe's default is {recipe.opset})")
    started = time.perf_counter()
    folder = ensure_dir(Path(out_dir) / recipe.name)
    known = _existing_hashes(folder)
    for filename in (MODEL, WEIGHTS):
        check_can_overwrite(folder / filename, known.get(filename), force)
    if (folder / MANIFEST).exists() and not known and not force:
        raise DeployKitError(f"{folder / MANIFEST} exists and was not written by deploykit; pass --force to overwrite it")

    step("building the module")
    model = seeded_model(recipe, seed) if checkpoint is None else load_checkpoint(recipe.build(), checkpoint)
    cases = _check_cases(recipe, static)
    applied = []
    export_model = model
    if rewrites:
        export_model, applied = apply_rewrites(model)
        if applied:
            step(f"proving {len(applied)} rewrite(s) equal in PyTorch")
            _prove_rewrites(model, export_model, recipe, cases + [recipe.case("max")] * (not static))

    reference = ReferenceCheck(model, recipe, cases, recipe.tolerance("fp32"), cases[0] if static else None)
    example = recipe.make_inputs(example_case(recipe))
    example_tensors = [torch.from_numpy(example[t.name]) for t in recipe.inputs]
    attempts, raw, used = [], None, None
    order = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    with tempfile.TemporaryDirectory(prefix="deploykit-") as tmp:
        for name in order:
            step(f"exporting with the {name} exporter (opset {opset})")
            path = Path(tmp) / f"{name}.onnx"
            log: list[str] = []
            try:
                EXPORTERS[name](FlatIO(export_model, recipe.call), example_tensors, recipe, opset, not static, path, log)
                check_onnx_model(path)
                candidate = onnx.load(str(path))
                stamped = stamp_static_output_dims(candidate, recipe)
                step("checking parity with PyTorch")
                reference.require(candidate, f"the {name} export")
            except UserCodeError:
                raise  # the user's module itself failed (e.g. its forward at a check shape): not an exporter's fault
            except ExportRefused as exc:
                attempts.append({"exporter": name, "ok": False, "reason": str(exc)})
                continue
            except Exception as exc:  # the exporters raise many types; keep the first line as the reason
                attempts.append({"exporter": name, "ok": False,
                                 "reason": f"{type(exc).__name__}: {first_line(exc)}"})
                continue
            attempts.append({"exporter": name, "ok": True, "stamped_output_dims": stamped, "log": log[-20:]})
            raw, used = candidate, name
            break
    if raw is None:
        reasons = "; ".join(f"{a['exporter']}: {a['reason']}" for a in attempts)
        raise ExportRefused(f"{recipe.name}: no exporter produced a correct model ({reasons})")

    actual_opset = opset_of(raw)
    opset_note = "" if actual_opset == opset else (
        f"requested opset {opset}, the {used} exporter wrote {actual_opset} "
        "(it implements no lower opset and its down-conversion failed)")

    chosen, chosen_name, nodes, simplifiers = raw, "none", {"raw": len(raw.graph.node)}, []
    if simplify:
        for name, run in SIMPLIFIERS.items():
            step(f"simplifying with {name}")
            try:
                candidate = run(raw)
                nodes[name] = len(candidate.graph.node)
                onnx.checker.check_model(candidate, full_check=True)
                reference.require(candidate, f"the {name}-simplified model")
            except Exception as exc:
                nodes.setdefault(name, None)
                simplifiers.append({"simplifier": name, "ok": False, "reason": first_line(exc)[:300]})
                continue
            simplifiers.append({"simplifier": name, "ok": True})
            if chosen_name == "none":
                chosen, chosen_name = candidate, name
    nodes["chosen"] = chosen_name

    ort_optimization = {"applied": False, "notes": []}
    if optimize:
        step("optimizing for onnxruntime")
        try:
            candidate, notes = optimize_for_ort(chosen, recipe)
            if notes:
                reference.require(candidate, "the onnxruntime-optimized model")
                chosen, ort_optimization = candidate, {"applied": True, "notes": notes}
                nodes["optimized"] = len(chosen.graph.node)
        except Exception as exc:  # an optimization that breaks anything is dropped, never kept
            ort_optimization = {"applied": False, "notes": [], "reason": first_line(exc)[:300]}

    step("writing the artifact")
    model_bytes = chosen.SerializeToString()
    atomic_write_bytes(folder / WEIGHTS, state_dict_bytes(model))
    atomic_write_bytes(folder / MODEL, model_bytes)
    graph_io = {v.name: dims_of(v) for v in (*chosen.graph.input, *chosen.graph.output)}
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": recipe.name,
        "module": recipe.module or recipe.factory,
        "recipe": {"path": str(recipe.path), "sha256": recipe.sha256, "args": recipe.args, "call": recipe.call},
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
        "dims": {n: ({"value": d.value, "reason": d.reason} if d.is_static else
                     {"min": d.min, "opt": d.opt, "max": d.max, "multiple_of": d.multiple_of})
                 for n, d in recipe.dims.items()},
        "nodes": nodes,
        "simplifier_attempts": simplifiers,
        "ort_optimization": ort_optimization,
        "checks": {"onnx_checker": "passed", "dynamic_axes": "passed" if not static else "static",
                   "parity_cases": [c.values for c in cases]},
        "weights": {"source": f"seeded({seed})" if checkpoint is None else str(checkpoint)},
        "command": " ".join(sys.argv[:1] + sys.argv[1:]) if sys.argv else "",
        "files": {MODEL: sha256_file(folder / MODEL), WEIGHTS: sha256_file(folder / WEIGHTS)},
    }
    atomic_write_json(folder / MANIFEST, manifest)
    return ExportResult(recipe.name, folder / MODEL, used, actual_opset, opset_note,
                        [r.description for r in applied], nodes, chosen_name,
                        time.perf_counter() - started, manifest)
