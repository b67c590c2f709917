"""Loading recipes (``recipes/<name>.toml``) into validated ``Recipe`` data.

Every problem is reported as ``<file>: <field>: <what is wrong>`` so the user can fix the TOML.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import itertools
import json
import math
import os
import tomllib
from fractions import Fraction
from pathlib import Path

from ..errors import DeployKitError, first_line
from ..store.files import is_safe_name, safe_name
from ..store.layout import PRECISIONS
from ..structure import CALLS
from ..tensors.shapes import DimExpr, allowed_values, parse_dim
from ..tensors.spec import DimSpec, TensorSpec
from .factory import import_factory
from .spec import (CALIBRATION_METHODS, DEFAULT_TOLERANCES, DISTRIBUTIONS, CalibrationSpec, Recipe, RecipeError,
                   Tolerance, zoo)

_TOP_KEYS = {"module", "factory", "in_memory", "summary", "opset", "call", "args", "args_json", "inputs", "outputs",
             "dims", "tolerance", "calibration", "max_elements"}

# The one bound on what a recipe may ask for: the elements of each declared tensor (input or output) at the
# max shape. 2**28 float32 elements are 1 GiB per tensor; a recipe that needs more says so with
# ``max_elements = N`` (the check then uses N), so a typo such as H max 100000 is refused at load, with the
# number, instead of an export that grows past the machine's memory.
DEFAULT_MAX_ELEMENTS = 2**28


def default_recipe_dir() -> Path:
    """$DEPLOYKIT_RECIPES, else ./recipes, else the recipes/ folder next to the package (editable install)."""
    env = os.environ.get("DEPLOYKIT_RECIPES")
    if env:
        folder = Path(env)
        if not folder.is_dir():
            why = "does not exist" if not folder.exists() else "is not a folder"
            raise RecipeError(f"DEPLOYKIT_RECIPES={env} {why}: point it at a folder of recipe .toml files")
        return folder
    here = Path.cwd() / "recipes"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "recipes"


def _folder(recipe_dir: Path | None) -> Path:
    folder = recipe_dir or default_recipe_dir()
    if not folder.is_dir():
        why = "does not exist" if not folder.exists() else "is not a folder"
        raise RecipeError(f"recipe folder {folder} {why}")
    return folder


def recipe_names(recipe_dir: Path | None = None) -> list[str]:
    return sorted(p.stem for p in _folder(recipe_dir).glob("*.toml"))


def find_recipe(name: str, recipe_dir: Path | None = None) -> Recipe:
    folder = _folder(recipe_dir)
    path = folder / f"{name}.toml"
    if not is_safe_name(name) or not path.is_file():  # a name like ../x is not looked up outside the folder
        names = recipe_names(folder)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f" (recipes in {folder}: {len(names)})"
        raise RecipeError(f"unknown recipe {name!r}{hint}")
    return load_recipe(path)


def load_all(recipe_dir: Path | None = None) -> list[Recipe]:
    folder = _folder(recipe_dir)
    return [load_recipe(folder / f"{n}.toml") for n in recipe_names(folder)]


def load_recipe(path: str | Path, *, trusted: bool = True) -> Recipe:
    """``path``'s recipe. ``trusted=False`` for a recipe the user did not hand over (an artifact's copy): its
    factory is then neither imported nor called (see ``Recipe.trusted``)."""
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc.strerror}") from None
    return recipe_from_bytes(raw_bytes, path, trusted=trusted)


def recipe_name(path: Path) -> str:
    """``recipes/cbam.toml`` -> cbam; an artifact's copy ``artifacts/mynet/recipe.toml`` -> mynet."""
    return path.parent.name if path.name == "recipe.toml" else path.stem


def recipe_from_bytes(raw_bytes: bytes, path: Path, *, trusted: bool = True) -> Recipe:
    """A recipe from its TOML bytes; ``path`` names it (its stem is the recipe's name) in every message."""
    try:
        data = tomllib.loads(raw_bytes.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not valid TOML: {first_line(exc)}") from None
    safe_name(recipe_name(path), f"{path}: the file name gives the recipe (and its artifact folder) the name")
    return _Validator(path, data, raw_bytes, trusted).recipe()


class _Validator:
    def __init__(self, path: Path, data: dict, raw_bytes: bytes, trusted: bool = True):
        self.path, self.data, self.raw_bytes, self.trusted = path, data, raw_bytes, trusted

    def fail(self, where: str, what: str):
        raise RecipeError(f"{self.path}: {where}: {what}")

    def typed(self, table: dict, key: str, kind, where: str, default=None, required=False):
        if key not in table:
            if required:
                self.fail(where, "is required")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            self.fail(where, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        return value

    def recipe(self) -> Recipe:
        d = self.data
        for key in d:
            if key not in _TOP_KEYS:
                self.fail(key, f"unknown field (known: {', '.join(sorted(_TOP_KEYS))})")
        module = self.typed(d, "module", str, "module")
        factory = self.typed(d, "factory", str, "factory")
        in_memory = self.typed(d, "in_memory", str, "in_memory")  # deploykit.export(model, ...): no code to import
        if sum(x is not None for x in (module, factory, in_memory)) != 1:
            self.fail("module", "give exactly one of `module` (a zoo name) or `factory` (package.module:callable)")
        opset = self.typed(d, "opset", int, "opset", default=17)
        if not 13 <= opset <= 23:
            self.fail("opset", f"{opset} is outside the supported range 13..23")
        call = self.typed(d, "call", str, "call", default="args")
        if call not in CALLS:
            self.fail("call", f"must be one of {', '.join(map(repr, CALLS))}, got {call!r}")
        args = self.typed(d, "args", dict, "args", default={})
        if "args_json" in d:  # TOML has no null: arguments holding one are kept as JSON
            if args:
                self.fail("args_json", "give `args` or `args_json`, not both")
            try:
                args = json.loads(self.typed(d, "args_json", str, "args_json"))
            except json.JSONDecodeError as exc:
                self.fail("args_json", f"is not valid JSON: {exc}")
            if not isinstance(args, dict):
                self.fail("args_json", f"must hold a JSON object, got {type(args).__name__}")
        dims = self.dims(self.typed(d, "dims", dict, "dims", required=True))
        inputs = self.tensors("inputs", dims)
        outputs = self.tensors("outputs", dims)
        used = {x.symbol for t in inputs for x in t.shape if isinstance(x, DimExpr)}
        for name in dims:
            if name not in used:
                self.fail(f"dims.{name}", "is not used by any input shape")
        self.check_sizes(inputs, outputs, dims, self.typed(d, "max_elements", int, "max_elements",
                                                           default=DEFAULT_MAX_ELEMENTS))
        self.check_expressions(inputs + outputs, dims)
        recipe = Recipe(
            name=recipe_name(self.path), path=self.path, module=module, factory=factory, in_memory=in_memory,
            summary=self.typed(d, "summary", str, "summary", default=""), opset=opset, call=call,
            args=args, inputs=inputs, outputs=outputs, dims=dims,
            tolerances=self.tolerances(self.typed(d, "tolerance", dict, "tolerance", default={})),
            sha256=hashlib.sha256(self.raw_bytes).hexdigest(), text=self.raw_bytes.decode(),
            calibration=self.calibration(self.typed(d, "calibration", dict, "calibration", default={}), inputs),
            trusted=self.trusted,
        )
        self.check_args(recipe)
        return recipe

    def dims(self, table: dict) -> dict[str, DimSpec]:
        specs = {}
        for name, spec in table.items():
            where = f"dims.{name}"
            if not isinstance(spec, dict):
                self.fail(where, "must be a table with min/opt/max (or value/reason)")
            unknown = set(spec) - {"min", "opt", "max", "multiple_of", "value", "reason"}
            if unknown:
                self.fail(where, f"unknown field(s) {', '.join(sorted(unknown))}")
            if "value" in spec:
                value = self.typed(spec, "value", int, f"{where}.value")
                reason = self.typed(spec, "reason", str, f"{where}.reason", required=True)
                if set(spec) & {"min", "opt", "max", "multiple_of"}:
                    self.fail(where, "a static dim (value=...) takes no min/opt/max/multiple_of")
                if value < 1 or not reason.strip():
                    self.fail(where, "a static dim needs value >= 1 and a non-empty reason")
                specs[name] = DimSpec(name, value=value, reason=reason)
                continue
            lo, opt, hi = (self.typed(spec, k, int, f"{where}.{k}", required=True) for k in ("min", "opt", "max"))
            step = self.typed(spec, "multiple_of", int, f"{where}.multiple_of", default=1)
            if lo < 1:
                self.fail(f"{where}.min", f"must be >= 1, got {lo}")
            if lo > hi:
                self.fail(where, f"min ({lo}) > max ({hi})")
            if not lo <= opt <= hi:
                self.fail(f"{where}.opt", f"opt ({opt}) is outside [min, max] = [{lo}, {hi}]")
            if step < 1:
                self.fail(f"{where}.multiple_of", f"must be >= 1, got {step}")
            for k, v in (("min", lo), ("opt", opt), ("max", hi)):
                if v % step:
                    self.fail(f"{where}.{k}", f"{v} is not a multiple of multiple_of={step}")
            specs[name] = DimSpec(name, lo, opt, hi, step)
        return specs

    def tensors(self, key: str, dims: dict) -> tuple[TensorSpec, ...]:
        items = self.typed(self.data, key, list, key, required=True)
        if not items:
            self.fail(key, "needs at least one entry")
        specs, seen = [], set()
        for i, item in enumerate(items):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                self.fail(where, "must be a table with name and shape")
            unknown = set(item) - {"name", "shape", "dist", "mean", "std", "low", "high"}
            if unknown:
                self.fail(where, f"unknown field(s) {', '.join(sorted(unknown))}")
            name = self.typed(item, "name", str, f"{where}.name", required=True)
            if name in seen:
                self.fail(f"{where}.name", f"duplicate name {name!r}")
            seen.add(name)
            shape_raw = self.typed(item, "shape", list, f"{where}.shape", required=True)
            shape = []
            for j, dim in enumerate(shape_raw):
                try:
                    parsed = parse_dim(dim)
                except ValueError as exc:
                    self.fail(f"{where}.shape[{j}]", str(exc))
                if parsed is None and key == "inputs":
                    self.fail(f"{where}.shape[{j}]", "\"?\" is for outputs only: an input's every axis needs a size")
                if isinstance(parsed, DimExpr) and parsed.symbol not in dims:
                    self.fail(f"{where}.shape[{j}]", f"unknown symbol {parsed.symbol!r} (declare it under [dims.{parsed.symbol}])")
                shape.append(parsed)
            dist = self.typed(item, "dist", str, f"{where}.dist", default="normal")
            if dist not in DISTRIBUTIONS:
                self.fail(f"{where}.dist", f"must be one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
            num = (int, float)
            spec = TensorSpec(
                name, tuple(shape), dist,
                mean=float(self.typed(item, "mean", num, f"{where}.mean", default=0.0)),
                std=float(self.typed(item, "std", num, f"{where}.std", default=1.0)),
                low=float(self.typed(item, "low", num, f"{where}.low", default=-1.0)),
                high=float(self.typed(item, "high", num, f"{where}.high", default=1.0)),
            )
            if spec.std <= 0 or spec.low >= spec.high:
                self.fail(where, "needs std > 0 and low < high")
            specs.append(spec)
        return tuple(specs)

    def check_sizes(self, inputs, outputs, dims: dict[str, DimSpec], limit: int) -> None:
        """Every tensor at the max shape must fit the bound (DEFAULT_MAX_ELEMENTS, or the recipe's max_elements)."""
        if limit < 1:
            self.fail("max_elements", f"must be >= 1, got {limit}")
        for key, tensors in (("inputs", inputs), ("outputs", outputs)):
            for i, t in enumerate(tensors):
                if any(d is None for d in t.shape):
                    continue  # an output dim the graph decides ("?"): its inputs are bounded, so is it
                sizes = [d if isinstance(d, int) else d.scale * dims[d.symbol].max for d in t.shape]
                elements = math.prod(sizes)
                if elements > limit:
                    shown = "x".join(str(int(v)) if Fraction(v).denominator == 1 else str(float(v)) for v in sizes)
                    grow = [d.symbol for d in t.shape if isinstance(d, DimExpr) and not dims[d.symbol].is_static]
                    hint = f"lower {', '.join(f'dims.{g}.max' for g in dict.fromkeys(grow))}, or " if grow else ""
                    self.fail(f"{key}[{i}] {t.name!r}",
                              f"{shown} = {int(elements):,} elements ({_bytes(elements * 4)} as float32) at the max "
                              f"shape, over the bound of {limit:,} elements ({_bytes(limit * 4)}); {hint}raise the "
                              f"bound with max_elements = {_round_up(elements)} at the top of the recipe")

    def check_expressions(self, tensors, dims: dict[str, DimSpec]) -> None:
        """Every expression must be a whole number at every value its symbol may take."""
        for t in tensors:
            for d in t.shape:
                if not isinstance(d, DimExpr):
                    continue
                spec = dims[d.symbol]
                values = [spec.value] if spec.is_static else allowed_values(spec.min, spec.max, spec.multiple_of)
                # scale * v is whole iff its denominator divides v; the residues repeat within that many values
                for v in itertools.islice(values, d.scale.denominator):
                    if (d.scale * v).denominator != 1:
                        self.fail(
                            f"{t.name}.shape",
                            f"{d.text} is not whole at {d.symbol}={v}: raise dims.{d.symbol}.multiple_of",
                        )

    def tolerances(self, table: dict) -> dict[str, Tolerance]:
        result = {}
        for precision in table:
            if precision not in PRECISIONS:
                self.fail(f"tolerance.{precision}", f"unknown precision (known: {', '.join(PRECISIONS)})")
        for precision in PRECISIONS:
            merged = dict(DEFAULT_TOLERANCES[precision])
            given = table.get(precision, {})
            if not isinstance(given, dict):
                self.fail(f"tolerance.{precision}", "must be a table")
            for key, value in given.items():
                where = f"tolerance.{precision}.{key}"
                if key not in merged:
                    self.fail(where, f"unknown field (known: {', '.join(merged)})")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    self.fail(where, f"must be a non-negative number, got {value!r}")
                merged[key] = float(value)
            result[precision] = Tolerance(**merged)
        return result

    def calibration(self, table: dict, inputs) -> CalibrationSpec:
        known = ("input", "layout", "color", "resize", "scale", "mean", "std", "batch", "method")
        for key in table:
            if key not in known:
                self.fail(f"calibration.{key}", f"unknown field (known: {', '.join(known)})")
        num = (int, float)
        names = [t.name for t in inputs]
        image_input = self.typed(table, "input", str, "calibration.input")
        if image_input is not None and image_input not in names:
            self.fail("calibration.input", f"{image_input!r} is not an input (inputs: {', '.join(names)})")
        choices = {"layout": ("NCHW", "NHWC"), "color": ("RGB", "BGR", "GRAY"), "method": CALIBRATION_METHODS}
        for key, allowed in choices.items():
            value = table.get(key)
            if value is not None and value not in allowed:
                self.fail(f"calibration.{key}", f"must be one of {', '.join(allowed)}, got {value!r}")
        resize = self.typed(table, "resize", list, "calibration.resize")
        if resize is not None and (len(resize) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                           for v in resize)):
            self.fail("calibration.resize", f"must be [H, W] with two ints >= 1, got {resize!r}")
        vectors = {}
        for key in ("mean", "std"):
            value = self.typed(table, key, list, f"calibration.{key}", default=[0.0 if key == "mean" else 1.0])
            if not value or any(isinstance(v, bool) or not isinstance(v, num) for v in value):
                self.fail(f"calibration.{key}", f"must be a non-empty list of numbers, got {value!r}")
            vectors[key] = tuple(float(v) for v in value)
        if any(v <= 0 for v in vectors["std"]):
            self.fail("calibration.std", "every std must be > 0")
        scale = float(self.typed(table, "scale", num, "calibration.scale", default=1.0 / 255.0))
        if scale <= 0:
            self.fail("calibration.scale", f"must be > 0, got {scale}")
        batch = self.typed(table, "batch", int, "calibration.batch")
        if batch is not None and batch < 1:
            self.fail("calibration.batch", f"must be >= 1, got {batch}")
        return CalibrationSpec(
            input=image_input, layout=table.get("layout", "NCHW"), color=table.get("color", "RGB"),
            resize=tuple(resize) if resize else None, scale=scale, mean=vectors["mean"], std=vectors["std"],
            batch=batch, method=table.get("method"),
        )

    def check_args(self, recipe: Recipe) -> None:
        if recipe.module is not None:
            try:
                factory = zoo().get(recipe.module).factory
            except DeployKitError as exc:
                self.fail("module", str(exc))
        elif not recipe.runs_own_code or recipe.in_memory is not None:
            return  # importing it would run the artifact's code; its arguments are checked when it is trusted
        else:
            factory = import_factory(recipe.factory, f"{self.path}: factory")
        params = inspect.signature(factory).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return
        accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        for key in recipe.args:
            if key not in accepted:
                self.fail(f"args.{key}", f"{recipe.module or recipe.factory} takes no argument {key!r} "
                          f"(it takes: {', '.join(sorted(accepted))})")


def _bytes(count) -> str:
    count = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.3g} PiB"


def _round_up(elements) -> int:
    """A readable bound just above ``elements`` (two significant digits)."""
    value = math.ceil(elements)
    digits = max(len(str(value)) - 2, 0)
    return -(-value // 10**digits) * 10**digits


def check_module(recipe, module, path) -> None:
    if module and recipe.factory != module:
        # the recipe names its factory; --module, when given too, must agree so the user knows what gets built
        raise DeployKitError(f"{path}: factory is {recipe.factory or recipe.module!r}, --module says {module!r}")


def resolve_recipe(name: str, recipe_dir=None, out_dir=None, module=None, trust_code=False):
    """``name``'s recipe: the recipe folder's (the user's), else the copy in the artifact ``out_dir/name/``, which
    is untrusted unless ``--module`` names its factory or ``--trust-code`` is given."""
    folder = recipe_dir or default_recipe_dir()
    if (folder / f"{name}.toml").is_file() or out_dir is None or not (Path(out_dir) / name / "recipe.toml").is_file():
        recipe = find_recipe(name, folder)
        check_module(recipe, module, recipe.path)
        return recipe
    path = Path(out_dir) / name / "recipe.toml"
    recipe = load_recipe(path, trusted=trust_code)
    check_module(recipe, module, path)
    return load_recipe(path) if module and not trust_code else recipe  # the user named this code
