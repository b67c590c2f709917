"""A recipe for the user's own module from command-line flags, with its outputs inferred.

    deploykit export --module pkg.mod:factory --input x=B,3,H,W \\
        --dim B=1:2:8 --dim H=64:224:512/32 --dim W=64:224:512/32 --args '{"num_classes": 10}'

The flags become recipe TOML, validated by the same rules as a hand-written recipe and written into
the artifact (recipe.toml), so every later command needs only the artifact's name. Outputs are found
by running the module at two shapes that differ in every symbol: each output axis is a fixed size,
a symbol times or divided by a whole number (``B``, ``H/32``, ``2*W``), or ``"?"`` (dynamic, with no
such relation: e.g. ``(H - 1) // 2``).
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import DeployKitError
from ..families import as_exported
from ..guard import at_declared_shape
from ..store.files import safe_name
from ..structure import StructureError, leaf_names
from ..tensors.shapes import ShapeCase, parse_dim, resolve_shape
from .factory import import_factory
from .load import recipe_from_bytes

_DIM = re.compile(r"^([A-Za-z_]\w*)=(\d+)(?::(\d+):(\d+))?(?:/(\d+))?$")


def parse_inputs(items: list[str]) -> list[tuple[str, list]]:
    """``x=B,3,H,W`` -> ("x", ["B", 3, "H", "W"]); ints are static sizes, anything else a dim expression."""
    inputs = []
    for item in items:
        name, sep, dims = item.partition("=")
        if not sep or not name.strip() or not dims.strip():
            raise DeployKitError(f"--input {item!r}: expected NAME=DIM,DIM,... such as x=B,3,H,W")
        shape = [int(d) if d.strip().isdigit() else d.strip() for d in dims.split(",")]
        if any(d == "" for d in shape):
            raise DeployKitError(f"--input {item!r}: an empty dim")
        inputs.append((name.strip(), shape))
    names = [n for n, _ in inputs]
    if len(set(names)) != len(names):
        raise DeployKitError(f"--input: the names {names} repeat")
    return inputs


def parse_dims(items: list[str]) -> dict[str, dict]:
    """``H=64:224:512/32`` -> {"min": 64, "opt": 224, "max": 512, "multiple_of": 32}; ``T=24`` -> a fixed size."""
    dims = {}
    for item in items:
        match = _DIM.match(item.replace(" ", ""))
        if not match:
            raise DeployKitError(f"--dim {item!r}: expected SYM=MIN:OPT:MAX[/STEP] (e.g. H=64:224:512/32) or SYM=N")
        name, lo, opt, hi, step = match.groups()
        if name in dims:
            raise DeployKitError(f"--dim {name} is given twice")
        if opt is None:
            if step:
                raise DeployKitError(f"--dim {item!r}: a fixed size takes no /STEP")
            dims[name] = {"value": int(lo), "reason": f"fixed by --dim {name}={lo}"}
        else:
            dims[name] = {"min": int(lo), "opt": int(opt), "max": int(hi), **({"multiple_of": int(step)} if step else {})}
    return dims


MAX_ARGS_DEPTH = 32  # constructor arguments are a few levels deep; ~900 overflowed the TOML round trip


def _depth(value) -> int:
    depth, level = 0, [value]
    while level:
        level = [v for item in level if isinstance(item, (list, dict))
                 for v in (item.values() if isinstance(item, dict) else item)]
        depth += 1
    return depth - 1


def parse_args_json(text: str | None) -> dict:
    """``--args``: the factory's keyword arguments as a JSON object (any JSON value, null included)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeployKitError(f"--args is not valid JSON: {exc}") from None
    except RecursionError:
        raise DeployKitError(f"--args is nested too deeply (at most {MAX_ARGS_DEPTH} levels)") from None
    if _depth(value) > MAX_ARGS_DEPTH:
        raise DeployKitError(f"--args is nested too deeply (at most {MAX_ARGS_DEPTH} levels)")
    if not isinstance(value, dict):
        raise DeployKitError(f"--args must be a JSON object of constructor keyword arguments, got {type(value).__name__}")
    return value


def _holds_null(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_holds_null(v) for v in value.values())
    return isinstance(value, list) and any(_holds_null(v) for v in value)


def _toml_string(text: str) -> str:
    """A TOML basic string: characters as they are (json's \\ud83d\\ude00 surrogate pairs are not TOML), with
    json's escapes for quotes, backslashes and control characters (valid TOML escapes too)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DeployKitError(f"--args: {text!r} holds a lone surrogate, which no file can hold") from None
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")  # DEL: JSON keeps it, TOML does not


def _toml(value) -> str:
    """A TOML literal for the generated recipe (json's strings and numbers are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")  # TOML's spellings, not JSON's
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_string(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    raise DeployKitError(f"--args: {value!r} has no TOML form")


def recipe_text(source: dict, inputs, dims: dict, outputs, args: dict, call: str = "args") -> str:
    """The generated recipe. ``source`` is {"factory": "pkg.mod:fn"} or {"in_memory": "ClassName"}."""
    (kind, value), = source.items()
    origin = f"`deploykit export --module {value}`" if kind == "factory" else "deploykit.export() in Python"
    lines = [f"# generated by {origin}", f"{kind} = {_toml(value)}",
             f"summary = {_toml(('your module ' if kind == 'factory' else 'your module in memory: ') + value)}"]
    if call != "args":
        lines.append(f"call = {_toml(call)}")
    if args and _holds_null(args):  # TOML has no null: the arguments are kept as the JSON they came as
        lines.append(f"args_json = {_toml_string(json.dumps(args, ensure_ascii=False))}")
    elif args:
        lines += ["", "[args]"] + [f"{_toml_string(str(k))} = {_toml(v)}" for k, v in args.items()]
    for table, tensors in (("inputs", inputs), ("outputs", outputs)):
        for name, shape in tensors:
            lines += ["", f"[[{table}]]", f"name = {_toml(name)}", f"shape = {_toml(shape)}"]
    for name, spec in dims.items():
        lines += ["", f"[dims.{name}]"] + [f"{k} = {_toml(v)}" for k, v in spec.items()]
    return "\n".join(lines) + "\n"


def _varies(symbol: str, cases: list[ShapeCase]) -> bool:
    return len({c.values.get(symbol) for c in cases}) > 1


def _relate(sizes: list[int], cases: list[ShapeCase], dims: dict) -> str | None:
    for symbol in dims:
        if "value" in dims[symbol] or not _varies(symbol, cases):
            continue
        ratios = {Fraction(size, case.values[symbol]) for size, case in zip(sizes, cases)}
        if len(ratios) != 1:
            continue
        k = ratios.pop()
        if k == 1:
            return symbol
        if k.denominator == 1:
            return f"{k.numerator}*{symbol}"
        if k.numerator == 1:
            return f"{symbol}/{k.denominator}"
    return None


def _other_values(dims: dict, opt: dict) -> list[dict]:
    """Two more shapes in which every dynamic symbol moves by a ratio no other symbol shares, so an
    output axis that scales with one symbol cannot be mistaken for another (opt H=64, B=2 -> H=32, B=1
    would make H/2 look like 16*B)."""
    others = []
    for _ in range(2):
        values, ratios = dict(opt), {Fraction(1)}
        for name, spec in dims.items():
            if "value" in spec:
                continue
            step = spec.get("multiple_of", 1)
            grid = range(spec["min"] + (-spec["min"]) % step, spec["max"] + 1, step)
            used = {o[name] for o in others}
            for v in sorted(grid, key=lambda v: ((v - opt[name]) % 2 == 0, abs(v - opt[name]))):
                ratio = Fraction(v, opt[name])
                if v not in used and ratio not in ratios:
                    values[name] = v
                    ratios.add(ratio)
                    break
        others.append(values)
    return others


def infer_outputs(model, inputs, dims: dict, call: str = "args",
                  family_names: list[str] | None = None) -> list[tuple[str, list]]:
    """Run the module at the opt shape, at two shapes where every dynamic symbol moves by its own ratio, and at
    the opt shape with other data; name the outputs by their path in the module's result (structure.py; a
    known family's own names when it has them) and relate each axis to the symbols (a relation must hold at
    all three shapes). An output whose presence or size depends on the data is refused, naming it."""
    import torch

    from ..runners.torch_runner import FlatIO  # function-level: torch; reading a recipe must not import it

    opt = {n: s.get("value", s.get("opt")) for n, s in dims.items()}
    cases = [ShapeCase("opt", opt)] + [ShapeCase(f"other-{i}", values) for i, values in enumerate(_other_values(dims, opt))]
    flat = FlatIO(model.eval(), call, tuple(name for name, _ in inputs))
    runs = []  # (names, shapes) per case, then once more at opt with other data
    for index, case in enumerate([*cases, cases[0]]):
        rng = np.random.default_rng(index if index < len(cases) else 1234)
        scale = 1.0 if index < len(cases) else 3.0
        tensors = [torch.from_numpy((scale * rng.standard_normal(resolve_shape(tuple(parse_dim(d) for d in shape),
                                                                              case.values))).astype(np.float32))
                   for _, shape in inputs]
        with at_declared_shape(f"the PyTorch module at {case.describe()}"), torch.inference_mode():
            outputs = flat(*tensors)
        runs.append((leaf_names(flat.structure), [tuple(o.shape) for o in outputs]))
    names, shapes_at_opt = runs[0]
    for (other_names, other_shapes), case, data in [*[(r, c, False) for r, c in zip(runs[1:], cases[1:])],
                                                     (runs[-1], cases[0], True)]:
        where = "with other data at the same shape" if data else f"at {case.describe()}"
        if other_names != names:
            extra = sorted(set(names) ^ set(other_names)) or names
            raise StructureError(f"the module's output {extra[0]!r} is there at {cases[0].describe()} and not {where} "
                                 "(or the other way round): deploykit exports a fixed set of outputs; return the same "
                                 "structure every time (a tensor, not None)")
        if data:
            for name, a, b in zip(names, shapes_at_opt, other_shapes):
                if a != b:
                    raise StructureError(f"the size of output {name!r} depends on the data ({a} and {b} at "
                                         f"{cases[0].describe()}): a step inside selects a data-dependent number of "
                                         "results (NMS, a score threshold); export the network up to that step (its "
                                         "raw head outputs) and run the selection outside the model")
    if not names:
        raise StructureError("the module returns no tensor (None, or empty containers)")
    if family_names is not None and len(family_names) == len(names):
        names = list(family_names)
    clash = sorted(set(names) & {name for name, _ in inputs})
    if clash:
        raise StructureError(f"an output is named {clash[0]!r} like an input; ONNX needs distinct names: rename "
                             "the input (--input)")
    outputs = []
    for index, name in enumerate(names):
        per_case = [shapes[index] for _, shapes in runs[:len(cases)]]
        ranks = {len(s) for s in per_case}
        if len(ranks) != 1:
            raise DeployKitError(f"output {name!r} changes rank with the input shape; write a recipe for it")
        axes = []
        for axis in range(ranks.pop()):
            sizes = [s[axis] for s in per_case]
            related = _relate(sizes, cases, dims)
            axes.append(related if related else sizes[0] if len(set(sizes)) == 1 else "?")
        outputs.append((name, axes))
    return outputs


def _require_ranges(inputs, dims: dict) -> None:
    used = {s for _, shape in inputs for d in shape if isinstance(d, str) for s in re.findall(r"[A-Za-z_]\w*", d)}
    missing = sorted(used - set(dims))
    if missing:
        raise DeployKitError(f"--input uses {', '.join(missing)} but no --dim gives its range "
                             f"(e.g. --dim {missing[0]}=1:2:8)")


def recipe_for_module(model, source: dict, inputs: list[tuple[str, list]], dims: dict, args: dict, name: str,
                      out_dir: str | Path, call: str = "args"):
    """The validated Recipe for a user's module (already built, or handed over in memory) with the given inputs
    and dims, its outputs inferred by running it as it will be exported (as_exported: a known family's export
    switches set). Its path is where export writes its copy (``<out_dir>/<name>/recipe.toml``)."""
    name = safe_name(name, "--name")
    _require_ranges(inputs, dims)
    path = Path(out_dir) / name / "recipe.toml"
    recipe_from_bytes(recipe_text(source, inputs, dims, [("output", [1])], args, call).encode(), path)  # validates
    exported, family = as_exported(model)
    outputs = infer_outputs(exported, inputs, dims, call, family and family["output_names"])
    return recipe_from_bytes(recipe_text(source, inputs, dims, outputs, args, call).encode(), path)


def recipe_from_flags(factory: str, inputs: list[str], dims: list[str], args: str | None, name: str | None,
                      out_dir: str | Path, call: str = "args"):
    """(Recipe, module) for ``deploykit export --module ... --input ... --dim ...``: the factory is called once,
    and that module is the one exported (a slow load, or a factory whose initialisation draws from the global
    RNG, would otherwise cost twice or differ)."""

    parsed_inputs = parse_inputs(inputs)
    parsed_dims = parse_dims(dims)
    parsed_args = parse_args_json(args)
    name = safe_name(name or factory.partition(":")[2].split(".")[-1] or "model", "--name")
    _require_ranges(parsed_inputs, parsed_dims)
    import_factory(factory)  # a one-line error for a bad --module before anything runs
    path = Path(out_dir) / name / "recipe.toml"
    draft = recipe_text({"factory": factory}, parsed_inputs, parsed_dims, [("output", [1])], parsed_args, call)
    model = recipe_from_bytes(draft.encode(), path).build()  # validates inputs, dims and args before running code
    recipe = recipe_for_module(model, {"factory": factory}, parsed_inputs, parsed_dims, parsed_args, name, out_dir,
                               call)
    return recipe, model
