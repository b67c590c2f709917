"""How the benchmark calls deploykit: the commands for one model, as a user would type them.

``recipe_free_commands`` (the default): `deploykit export --module ... --input ... --dim ...` then
`deploykit verify NAME --module ...`, the path a user takes. ``recipe_commands`` writes a recipe file per model instead
(the first baseline ran that way); both return the export and verify argv, the artifact is ``OUT/NAME``.
"""

from __future__ import annotations

import json
from pathlib import Path

FACTORY = "timm_factory:create"  # benchmarks/real_networks/timm_factory.py, importable from this folder
NUM_CLASSES = 1000


def _dim_range(spec) -> dict[str, str]:
    """SYM -> MIN:OPT:MAX[/STEP] (or a plain int for a fixed size)."""
    b = spec.batch
    dims = {"B": f"{b[0]}:{b[1]}:{b[2]}"}
    if spec.static is not None:
        dims.update(H=str(spec.static), W=str(spec.static))
    else:
        lo, opt, hi, step = spec.hw
        dims.update({s: f"{lo}:{opt}:{hi}/{step}" for s in "HW"})
    return dims


def recipe_free_commands(spec, out_dir: Path, recipe_dir: Path) -> tuple[list[str], list[str]]:
    """The recipe-free form (issue 12): no recipe file, the module's outputs inferred by deploykit."""
    export = ["deploykit", "export", "--module", FACTORY, "--input", "x=B,3,H,W",
              *[a for sym, r in _dim_range(spec).items() for a in ("--dim", f"{sym}={r}")],
              "--args", json.dumps(spec.factory_args()), "--name", spec.name, "--out", str(out_dir)]
    return export, ["deploykit", "verify", spec.name, "--module", FACTORY, "--out", str(out_dir)]


def recipe_commands(spec, out_dir: Path, recipe_dir: Path) -> tuple[list[str], list[str]]:
    """Today's form: a generated recipe per model, ``export --module --recipe`` then ``verify NAME --recipes``."""
    recipe_dir.mkdir(parents=True, exist_ok=True)
    path = recipe_dir / f"{spec.name}.toml"
    path.write_text(recipe_toml(spec))
    export = ["deploykit", "export", "--module", FACTORY, "--recipe", str(path), "--out", str(out_dir)]
    return export, ["deploykit", "verify", spec.name, "--out", str(out_dir), "--recipes", str(recipe_dir)]


COMMANDS = recipe_free_commands


def recipe_toml(spec) -> str:
    lines = [f"factory = {_toml(FACTORY)}", f"summary = {_toml('timm ' + spec.timm_name)}", "opset = 17", "",
             "[args]"]
    lines += [f"{k} = {_toml(v)}" for k, v in spec.factory_args().items()]
    lines += ["", "[[inputs]]", 'name = "x"', 'shape = ["B", 3, "H", "W"]', "",
              "[[outputs]]", 'name = "logits"', f'shape = ["B", {NUM_CLASSES}]', ""]
    b = spec.batch
    lines += ["[dims.B]", f"min = {b[0]}", f"opt = {b[1]}", f"max = {b[2]}", ""]
    for sym in "HW":
        lines.append(f"[dims.{sym}]")
        if spec.static is not None:
            lines += [f"value = {spec.static}", f"reason = {_toml(spec.reason)}"]
        else:
            lo, opt, hi, step = spec.hw
            lines += [f"min = {lo}", f"opt = {opt}", f"max = {hi}", f"multiple_of = {step}"]
        lines.append("")
    return "\n".join(lines)


def _toml(value) -> str:
    """A TOML literal for the few value types the model table uses (no TOML writer in the stdlib)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")
