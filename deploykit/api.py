"""The Python API: the CLI's steps on a module you hold, in a notebook or a script.

    import deploykit
    result = deploykit.export(model, {"x": "B,3,H,W"}, {"B": "1:2:8", "H": "64:224:512/32", "W": "64:224:512/32"},
                              name="mynet")
    run = deploykit.verify("mynet")          # against the PyTorch outputs the artifact stored: no code needed
    run.passed, run.cases[0].max_abs

Each function is the library call under its command (export_onnx, verify_artifact) with the CLI's own
syntax for inputs and dims, and returns the result object the command prints (``.summary()`` /
``.to_dict()`` is what ``--json`` writes).
"""

from __future__ import annotations

from pathlib import Path

from .errors import DeployKitError
from .export import ExportOptions, ExportResult, export_onnx
from .export.guards import ANALYSIS_BUDGET_S
from .recipe.from_module import parse_dims, recipe_for_module
from .recipe.load import find_recipe, resolve_recipe
from .reference import DEFAULT_BOUND_MB
from .store.files import safe_name
from .structure import CALLS
from .verify import VerifyOptions, VerifyRun, verify_artifact


def _inputs(inputs) -> list[tuple[str, list]]:
    """{name: "B,3,H,W" | [sizes and symbols] | an example tensor (its shape, every axis fixed)}."""
    import torch

    if not isinstance(inputs, dict) or not inputs:
        raise DeployKitError("inputs must be a dict of the forward's inputs, e.g. {\"x\": \"B,3,H,W\"}")
    parsed = []
    for name, spec in inputs.items():
        if not isinstance(name, str) or not name:
            raise DeployKitError(f"inputs: the name {name!r} is not a string")
        if torch.is_tensor(spec):
            shape = list(spec.shape)
        elif isinstance(spec, str):
            shape = [int(d) if d.strip().isdigit() else d.strip() for d in spec.split(",")]
        elif isinstance(spec, (list, tuple)):
            shape = [d if isinstance(d, int) else str(d).strip() for d in spec]
        else:
            raise DeployKitError(f"inputs[{name!r}]: expected \"B,3,H,W\", a list of sizes and symbols, or an example "
                                 f"tensor, got {type(spec).__name__}")
        if not shape or any(d == "" for d in shape):
            raise DeployKitError(f"inputs[{name!r}]: an empty dim in {spec!r}")
        parsed.append((name, shape))
    return parsed


def _dims(dims) -> dict:
    """{symbol: "MIN:OPT:MAX[/STEP]" | N (fixed) | (min, opt, max[, step])}, as --dim takes them."""
    items = []
    for symbol, spec in (dims or {}).items():
        if isinstance(spec, (list, tuple)) and len(spec) in (3, 4):
            spec = ":".join(str(v) for v in spec[:3]) + (f"/{spec[3]}" if len(spec) == 4 else "")
        items.append(f"{symbol}={spec}")
    return parse_dims(items)


def export(model, inputs=None, dims=None, *, name: str | None = None, out: str | Path = "artifacts",
           opset: int | None = None, call: str = "args", exporter: str = "auto", simplify: bool = True,
           static: bool = False, optimize: bool = True, force: bool = False,
           analysis_budget: float | None = ANALYSIS_BUDGET_S, reference_mb: float = DEFAULT_BOUND_MB,
           on_step=None) -> ExportResult:
    """Export ``model`` (an nn.Module as you hold it, with its weights; or a zoo recipe's name) to
    ``out/name/``, checked as ``deploykit export`` checks it; ExportRefused (a DeployKitError) with one line
    when it cannot be exported exactly.

    ``inputs``: {name: "B,3,H,W"} in forward order (``call="list"``: forward takes one list; ``"kwargs"``:
    keyword arguments named as the inputs). ``dims``: {symbol: "1:2:8"} or {"H": "64:224:512/32"}, or a
    fixed size. The artifact stores PyTorch's outputs at verify's shapes (``reference_mb`` bounds them), so
    ``verify(name)`` later needs neither this module nor its code."""
    from torch import nn

    options = ExportOptions(opset=opset, exporter=exporter, simplify=simplify, static=static, optimize=optimize,
                            force=force, analysis_budget=analysis_budget, reference_mb=reference_mb)
    if isinstance(model, str):
        if inputs is not None or dims is not None:
            raise DeployKitError(f"{model!r} is a recipe: it declares its own inputs and dims")
        return export_onnx(find_recipe(model), out, options, on_step=on_step)
    if not isinstance(model, nn.Module):
        raise DeployKitError(f"export takes an nn.Module (or a zoo recipe's name), got {type(model).__name__}")
    if call not in CALLS:
        raise DeployKitError(f"call must be one of {', '.join(CALLS)}, got {call!r}")
    parsed_inputs = _inputs(inputs)
    name = safe_name(name or type(model).__name__.lower(), "name")
    recipe = recipe_for_module(model, {"in_memory": type(model).__name__}, parsed_inputs, _dims(dims), {}, name,
                               out, call)
    return export_onnx(recipe, out, options, model=model, on_step=on_step)


def verify(artifact: str | Path, *, model=None, out: str | Path = "artifacts", backend: str = "ort-cpu",
           precision: str = "fp32", shapes=(), seed: int = 0, samples: int = 0, write: bool = True,
           force: bool = False, trust_code: bool = False) -> VerifyRun:
    """Verify an artifact (its name under ``out``, or its folder) as ``deploykit verify`` does, and return the run
    (``run.passed``, ``run.cases``; ``run.to_dict()`` is verify.json).

    PyTorch's side is the artifact's stored reference; ``model`` (the module you exported, unchanged) is needed
    only for what the store does not hold: ``shapes`` ({"B": 3, "H": 37}) or another ``seed``/``samples``."""
    folder = Path(artifact)
    if folder.is_dir() and (folder / "manifest.json").is_file():
        out, artifact = folder.parent, folder.name
    recipe = resolve_recipe(str(artifact), None, out, None, trust_code)
    opt = recipe.case("opt").values
    extra = []
    for shape in shapes:
        unknown = sorted(set(shape) - set(opt))
        if unknown:
            raise DeployKitError(f"shape {shape}: {unknown[0]!r} is not a symbol of {recipe.name} ({', '.join(opt)})")
        extra.append(dict(shape))
    options = VerifyOptions(backend=backend, precision=precision, extra_shapes=extra, seed=seed, samples=samples,
                            write=write, force=force)
    return verify_artifact(recipe, out, options, model=model)
