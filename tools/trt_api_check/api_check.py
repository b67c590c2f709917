"""Every TensorRT and cuda-python name deploykit's code touches, found by reading the code, checked against pinned APIs.

The TensorRT path cannot run without a GPU, so nothing else would notice a name that does not exist (a typo, or a
name TensorRT 11 removed) until a user's build fails. ``extract_uses`` reads Python source with ``ast`` and follows
values from ``import tensorrt`` / cuda-python's runtime module: attribute chains (``trt.BuilderFlag.FP16``), objects
TensorRT returns (``builder.create_builder_config()`` is an ``IBuilderConfig``: the return types come from the
TensorRT 10 stubs), attributes kept on ``self``, calls into the module's own functions (their parameters take the
arguments' types), ``getattr`` over constant strings, and methods a subclass of a TensorRT class overrides.
``check_uses`` looks each name up in ``data/tensorrt_{10,11}_api.json`` and ``data/cuda_bindings_{12,13}_api.json``
(``api_sources`` says how they were made).

A repository check, not part of the installed package: it reads deploykit's source tree with ``ast``, and its
references are used by nothing else. Run by ``tests/test_trt_api.py`` (which puts ``tools/`` on ``sys.path``).

Version rules:
- a name must exist in every version it is used with: TensorRT 10 and 11, cuda-bindings 12 and 13;
- a name guarded by ``hasattr(x, "n")`` / ``getattr(x, "n", default)`` / an import inside ``try ... except
  ImportError`` must exist in at least one of them (so a misspelt guarded name is still caught);
- a block whose first line carries the comment ``trt-api: 10`` (or ``11``) is used with that TensorRT major only.
``getattr`` with a name the code computes is reported as a dynamic use, for the caller to resolve from the code's
own data (``builder_flag_uses`` does it for the precision plans' builder flags).
"""

from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

TRT_MAJORS = (10, 11)
CUDA_MAJORS = (12, 13)
CUDA_RUNTIME = "cuda.bindings.runtime"
_PRAGMA = re.compile(r"#.*\btrt-api:\s*(10|11)\b")
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class Use:
    api: str                 # "tensorrt" or "cuda"
    module: str              # "tensorrt", "cuda.bindings.runtime", "cuda.bindings.utils", ...
    owner: str               # "" for a top-level name, else the class: "IBuilderConfig"
    name: str                # "set_flag", or a chain from the top level: "BuilderFlag.FP16"
    where: str               # "deploykit/trt/builder.py:97"
    versions: tuple[int, ...]
    guarded: bool = False

    @property
    def label(self) -> str:
        return f"{self.module}.{self.owner + '.' if self.owner else ''}{self.name}"


@dataclass(frozen=True)
class Dynamic:
    """``getattr(obj, <computed name>)``: a use whose name only the code's data can tell."""

    module: str
    owner: str
    where: str
    versions: tuple[int, ...]
    guarded: bool


# -- values the interpreter follows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mod:
    module: str  # "tensorrt", "cuda.bindings.runtime"


@dataclass(frozen=True)
class Obj:
    """A TensorRT/cuda object (or class) of known classes; ``kind`` says what a call returns."""

    module: str
    classes: frozenset
    kind: str = "value"       # "class": calling it makes an instance; "method": calling it returns ``classes``


@dataclass(frozen=True)
class Strings:
    values: frozenset


@dataclass(frozen=True)
class Func:
    node: ast.FunctionDef
    scope: object  # the _Scope it was defined in


UNKNOWN = None


@functools.lru_cache(maxsize=None)
def load_reference(filename: str) -> dict:
    return json.loads((Path(__file__).with_name("data") / filename).read_text())


def references() -> dict:
    """(api, major) -> reference."""
    return {("tensorrt", 10): load_reference("tensorrt_10_api.json"),
            ("tensorrt", 11): load_reference("tensorrt_11_api.json"),
            ("cuda", 12): load_reference("cuda_bindings_12_api.json"),
            ("cuda", 13): load_reference("cuda_bindings_13_api.json")}


def _api(module: str) -> str:
    return "tensorrt" if module == "tensorrt" else "cuda"


def _member(entry: dict, cls: str, name: str, seen=()) -> tuple[bool, str]:
    """(exists, its class or "") for ``cls.name`` in a module entry, through the bases."""
    spec = entry["classes"].get(cls)
    if spec is None or cls in seen:
        return False, ""
    if name in spec["members"]:
        return True, spec["members"][name]
    for base in spec["bases"]:
        found, kind = _member(entry, base, name, seen + (cls,))
        if found:
            return True, kind
    return False, ""


def _type_of(module: str, cls: str, name: str) -> tuple[str, str]:
    """(member class or "", "class"/"method"/"value") from the first reference that knows the member."""
    majors = TRT_MAJORS if module == "tensorrt" else CUDA_MAJORS
    for major in majors:
        entry = references()[(_api(module), major)]["modules"].get(module)
        if entry is None:
            continue
        if not cls:
            if name in entry["names"]:
                kind = entry["names"][name]
                return (name if name in entry["classes"] else ""), ("class" if kind == "class" else "method")
            continue
        found, member_class = _member(entry, cls, name)
        if found:
            nested = member_class and member_class.startswith(cls + ".") and member_class.endswith("." + name)
            return member_class, "class" if nested else "method"
    return "", "method"


# -- the interpreter -----------------------------------------------------------------------------------------


@dataclass
class _Scope:
    parent: _Scope | None
    names: dict = field(default_factory=dict)
    self_attrs: dict | None = None  # the instance attributes when this is a method's scope

    def get(self, name):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return UNKNOWN


class _Reader:
    def __init__(self, path: str, source: str, constants: dict, line_offset: int = 0):
        self.path, self.source_lines, self.offset = path, source.splitlines(), line_offset
        self.constants = constants          # module-level constant strings of the package, by (module, name)
        self.uses: dict[tuple, Use] = {}
        self.dynamic: list[Dynamic] = []
        self.versions: list[tuple[int, ...]] = [TRT_MAJORS]
        self.guards: list[set] = [set()]
        self.import_guard = 0
        self.recording = True
        self.calls: set = set()
        self.returns: list[list] = []

    # recording
    def where(self, node) -> str:
        return f"{self.path}:{node.lineno + self.offset}"

    def record(self, module, owner, name, node, guarded=False):
        if not self.recording:
            return
        versions = self.versions[-1] if module == "tensorrt" else CUDA_MAJORS
        guarded = guarded or (module, owner, name.split(".")[-1]) in self.guards[-1] or bool(self.import_guard)
        use = Use(_api(module), module, owner, name, self.where(node), versions, guarded)
        key = (use.module, use.owner, use.name, use.where)
        old = self.uses.get(key)
        self.uses[key] = use if old is None else replace(old, guarded=old.guarded and use.guarded)

    # values
    def attribute(self, value, name: str, node, guarded=False):
        if isinstance(value, Mod):
            self.record(value.module, "", name, node, guarded)
            cls, kind = _type_of(value.module, "", name)
            return Obj(value.module, frozenset([cls]) if cls else frozenset(), kind)
        if isinstance(value, Obj) and value.classes:
            result = set()
            kind = "method"
            for cls in sorted(value.classes):
                self.record(value.module, cls, name, node, guarded)
                member_class, kind = _type_of(value.module, cls, name)
                if member_class:
                    result.add(member_class)
            return Obj(value.module, frozenset(result), kind)
        return UNKNOWN

    def call(self, value):
        if isinstance(value, Obj):
            return Obj(value.module, value.classes, "value")
        return UNKNOWN

    def expr(self, node, scope: _Scope):
        match node:
            case ast.Constant(value=str() as text):
                return Strings(frozenset([text]))
            case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
                values = [self.expr(e, scope) for e in elts]
                if values and all(isinstance(v, Strings) for v in values):
                    return Strings(frozenset().union(*(v.values for v in values)))
                return UNKNOWN
            case ast.Dict(keys=keys, values=values):
                for k in keys:
                    if k is not None:
                        self.expr(k, scope)
                found = [self.expr(v, scope) for v in values]
                if found and all(isinstance(v, Strings) for v in found):
                    return Strings(frozenset().union(*(v.values for v in found)))  # a lookup gives one of these
                return UNKNOWN
            case ast.Name(id=name):
                return scope.get(name)
            case ast.Attribute(value=ast.Name(id="self"), attr=attr) if scope_self(scope) is not None:
                return scope_self(scope).get(attr, UNKNOWN)
            case ast.Attribute(value=inner, attr=attr):
                return self.attribute(self.expr(inner, scope), attr, node)
            case ast.Subscript(value=inner, slice=index):
                container = self.expr(inner, scope)
                self.expr(index, scope)
                return container if isinstance(container, Strings) else UNKNOWN
            case ast.Call(func=ast.Name(id="getattr"), args=[obj, name, *default]):
                return self.getattr_call(node, self.expr(obj, scope), name, scope, bool(default), default)
            case ast.Call(func=ast.Name(id="hasattr"), args=[obj, ast.Constant(value=str() as name)]):
                self.attribute(self.expr(obj, scope), name, node, guarded=True)
                return UNKNOWN
            case ast.Call(func=func, args=args, keywords=keywords):
                callee = self.expr(func, scope)
                arguments = [self.expr(a, scope) for a in args]
                for k in keywords:
                    self.expr(k.value, scope)
                if isinstance(callee, Func):
                    return self.call_function(callee, arguments)
                return self.call(callee)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                guards = self.guards_in(test, scope)
                self.guards.append(self.guards[-1] | guards)
                first = self.expr(body, scope)
                self.guards.pop()
                second = self.expr(orelse, scope)
                for value in (first, second):
                    if isinstance(value, Mod):
                        return value
                return first if first is not UNKNOWN else second
            case ast.ListComp(generators=generators) | ast.SetComp(generators=generators) | \
                    ast.GeneratorExp(generators=generators) | ast.DictComp(generators=generators):
                inner = _Scope(scope)
                for generator in generators:
                    self.assign(generator.target, self.expr(generator.iter, inner), inner)
                    for condition in generator.ifs:
                        self.expr(condition, inner)
                for part in ("elt", "key", "value"):
                    if hasattr(node, part):
                        self.expr(getattr(node, part), inner)
                return UNKNOWN
            case ast.Lambda():
                return UNKNOWN
            case _:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.expr):
                        self.expr(child, scope)
                return UNKNOWN

    def getattr_call(self, node, obj, name_node, scope, has_default, default):
        for d in default:
            self.expr(d, scope)
        name = self.expr(name_node, scope)
        if isinstance(name, Strings):
            results = [self.attribute(obj, n, node, guarded=has_default) for n in sorted(name.values)]
            classes = frozenset().union(*(r.classes for r in results if isinstance(r, Obj)))
            module = next((r.module for r in results if isinstance(r, Obj)), None)
            kinds = {r.kind for r in results if isinstance(r, Obj)}
            return Obj(module, classes, kinds.pop() if len(kinds) == 1 else "method") if module else UNKNOWN
        if isinstance(obj, (Mod, Obj)) and self.recording:
            owners = [""] if isinstance(obj, Mod) else sorted(obj.classes) or ["?"]
            module = obj.module
            for owner in owners:
                self.dynamic.append(Dynamic(module, owner, self.where(node), self.versions[-1], has_default))
        return UNKNOWN

    def guards_in(self, test, scope) -> set:
        """(module, class, name) pairs a condition proves present: hasattr(x, "n"), getattr(x, "n", default)."""
        guards = set()
        for node in ast.walk(test):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
                value = self.quiet(lambda: self.expr(node.args[0], scope))
                owners = [""] if isinstance(value, Mod) else sorted(value.classes) if isinstance(value, Obj) else []
                for owner in owners:
                    guards.add((value.module, owner, node.args[1].value))
        return guards

    def quiet(self, thunk):
        recording, self.recording = self.recording, False
        try:
            return thunk()
        finally:
            self.recording = recording

    def call_function(self, func: Func, arguments):
        key = (id(func.node), tuple(map(repr, arguments)), self.recording)
        if key in self.calls:
            return UNKNOWN
        self.calls.add(key)
        scope = _Scope(func.scope, self_attrs=None)
        self.annotated(func.node, scope)
        params = [a.arg for a in func.node.args.args]
        for param, value in zip(params, arguments):
            if value is not UNKNOWN:
                scope.names[param] = value
        self.returns.append([])
        self.block(func.node.body, scope)
        found = [r for r in self.returns.pop() if r is not UNKNOWN]
        return next((r for r in found if isinstance(r, Mod)), found[0] if found else UNKNOWN)

    # statements
    def pragma(self, node) -> tuple[int, ...] | None:
        line = self.source_lines[node.lineno - 1] if 0 < node.lineno <= len(self.source_lines) else ""
        match = _PRAGMA.search(line)
        return (int(match.group(1)),) if match else None

    def block(self, body, scope):
        for statement in body:  # functions are callable before their definition is reached (build_engine -> helpers)
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope.names.setdefault(statement.name, Func(statement, scope))
        for statement in body:
            self.statement(statement, scope)

    def statement(self, node, scope: _Scope):
        narrowed = self.pragma(node)
        if narrowed:
            self.versions.append(narrowed)
        try:
            self._statement(node, scope)
        finally:
            if narrowed:
                self.versions.pop()

    def _statement(self, node, scope: _Scope):
        match node:
            case ast.Import(names=names):
                for alias in names:
                    if alias.name == "tensorrt":
                        scope.names[alias.asname or "tensorrt"] = Mod("tensorrt")
            case ast.ImportFrom(module=module, names=names, level=0) if module and module.split(".")[0] == "cuda":
                for alias in names:
                    full = f"{module}.{alias.name}"
                    if full in (CUDA_RUNTIME, "cuda.cudart", "cuda.bindings.utils"):
                        self.record_module(full, node)
                        scope.names[alias.asname or alias.name] = Mod(full if full != "cuda.cudart" else "cuda.cudart")
                    else:
                        self.record(module, "", alias.name, node)
                        scope.names[alias.asname or alias.name] = UNKNOWN
            case ast.ImportFrom(module=module, names=names, level=level) if level > 0:
                for alias in names:
                    value = self.constants.get((module, alias.name), UNKNOWN)
                    scope.names[alias.asname or alias.name] = value
            case ast.Assign(targets=[ast.Tuple(elts=names) as target], value=ast.Tuple(elts=values)) \
                    if len(names) == len(values):  # self.trt, self.machine = trt, machine
                for name, value in zip(names, [self.expr(v, scope) for v in values]):
                    self.assign(name, value, scope)
            case ast.Assign(targets=targets, value=value):
                result = self.expr(value, scope)
                for target in targets:
                    self.assign(target, result, scope)
            case ast.AnnAssign(target=target, value=value) if value is not None:
                self.assign(target, self.expr(value, scope), scope)
            case ast.AugAssign(target=target, value=value):
                self.expr(value, scope)
                self.expr(target, scope)
            case ast.For(target=target, iter=iterable, body=body, orelse=orelse):
                self.assign(target, self.expr(iterable, scope), scope)
                self.block(body, scope)
                self.block(orelse, scope)
            case ast.While(test=test, body=body, orelse=orelse):
                self.expr(test, scope)
                self.block(body, scope)
                self.block(orelse, scope)
            case ast.If(test=test, body=body, orelse=orelse):
                self.expr(test, scope)
                self.guards.append(self.guards[-1] | self.guards_in(test, scope))
                self.block(body, scope)
                self.guards.pop()
                self.block(orelse, scope)
            case ast.Try(body=body, handlers=handlers, orelse=orelse, finalbody=finalbody):
                catches_import = any(_catches_import_error(h) for h in handlers)
                self.import_guard += catches_import
                self.block(body, scope)
                self.import_guard -= catches_import
                for handler in handlers:
                    # an ImportError fallback runs in its own scope: the names it binds do not replace the try's
                    inner = _Scope(scope) if _catches_import_error(handler) else scope
                    self.import_guard += _catches_import_error(handler)
                    self.block(handler.body, inner)
                    self.import_guard -= _catches_import_error(handler)
                    for name, value in inner.names.items() if inner is not scope else ():
                        scope.names.setdefault(name, value)
                self.block(orelse, scope)
                self.block(finalbody, scope)
            case ast.With(items=items, body=body):
                for item in items:
                    value = self.expr(item.context_expr, scope)
                    if item.optional_vars is not None:
                        self.assign(item.optional_vars, UNKNOWN if not isinstance(value, Obj) else value, scope)
                self.block(body, scope)
            case ast.Return(value=value):
                result = self.expr(value, scope) if value is not None else UNKNOWN
                if self.returns:
                    self.returns[-1].append(result)
            case ast.FunctionDef() | ast.AsyncFunctionDef():
                scope.names[node.name] = Func(node, scope)
                self.function(node, scope)
            case ast.ClassDef():
                self.class_def(node, scope)
            case ast.Expr(value=value):
                self.expr(value, scope)
            case _:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.expr):
                        self.expr(child, scope)
                    elif isinstance(child, ast.stmt):
                        self.statement(child, scope)
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and _embedded(value.value):
                self.embedded(value.value, node)

    def record_module(self, module: str, node):
        parent, _, name = module.rpartition(".")
        if self.recording:
            versions = CUDA_MAJORS
            guarded = bool(self.import_guard)
            use = Use("cuda", module, "", "<module>", self.where(node), versions, guarded)
            self.uses[(module, "", "<module>", use.where)] = use

    def assign(self, target, value, scope: _Scope):
        match target:
            case ast.Name(id=name):
                scope.names[name] = value
            case ast.Attribute(value=ast.Name(id="self"), attr=attr) if scope_self(scope) is not None:
                if value is not UNKNOWN or attr not in scope_self(scope):
                    scope_self(scope)[attr] = value
            case ast.Attribute(value=inner, attr=attr):  # config.builder_optimization_level = ...: a store is a use
                self.attribute(self.expr(inner, scope), attr, target)
            case ast.Tuple(elts=elts) | ast.List(elts=elts):
                for element in elts:
                    self.assign(element, UNKNOWN, scope)
            case _:
                self.expr(target, scope)

    def annotated(self, node, scope: _Scope) -> None:
        """Parameters annotated ``"tensorrt.ParserError"`` are objects of that class (where the stubs lack a
        return type, e.g. ``OnnxParser.get_error``, the code says what it gets)."""
        for arg in node.args.args + node.args.kwonlyargs:
            note = arg.annotation
            if isinstance(note, ast.Constant) and isinstance(note.value, str) and note.value.startswith("tensorrt."):
                scope.names[arg.arg] = Obj("tensorrt", frozenset([note.value.removeprefix("tensorrt.")]))
                self.record("tensorrt", "", note.value.removeprefix("tensorrt."), arg)

    def function(self, node, scope: _Scope, self_attrs=None):
        inner = _Scope(scope, self_attrs=self_attrs)
        self.annotated(node, inner)
        self.returns.append([])
        self.block(node.body, inner)
        self.returns.pop()

    def class_def(self, node: ast.ClassDef, scope: _Scope):
        bases = [self.expr(b, scope) for b in node.bases]
        attrs: dict = {}
        methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        self.quiet(lambda: [self.function(m, scope, attrs) for m in methods])  # first pass: what self holds
        for base in bases:  # overriding a TensorRT method: the name must be one TensorRT calls
            if isinstance(base, Obj) and base.classes:
                for method in methods:
                    if not method.name.startswith("_"):
                        self.attribute(Obj(base.module, base.classes, "class"), method.name, method)
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(statement, scope, attrs)
            else:
                self.statement(statement, scope)

    def embedded(self, text: str, node):
        """Code kept in a string and run elsewhere (probe.py's child script): read as a module of its own."""
        reader = _Reader(self.path, text, self.constants, line_offset=node.lineno - 1 + self.offset)
        reader.module(ast.parse(text))
        self.uses.update(reader.uses)
        self.dynamic += reader.dynamic

    def module(self, tree: ast.Module):
        self.block(tree.body, _Scope(None))


def scope_self(scope: _Scope):
    while scope is not None:
        if scope.self_attrs is not None:
            return scope.self_attrs
        scope = scope.parent
    return None


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = []
    if isinstance(handler.type, ast.Name):
        names = [handler.type.id]
    elif isinstance(handler.type, ast.Tuple):
        names = [e.id for e in handler.type.elts if isinstance(e, ast.Name)]
    return bool(set(names) & _IMPORT_ERRORS)


def _embedded(text: str) -> bool:
    if "import tensorrt" not in text and "cuda" not in text:
        return False
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return "\n" in text


# -- the package -------------------------------------------------------------------------------------------------


def package_constants(root: Path, package: str = "deploykit") -> dict:
    """(module, name) -> Strings for module-level constants of string collections (``CALIBRATORS = {...}``),
    keyed by the relative-import spelling a sibling would use (``..trt.calibration_cache`` -> ``trt.calibration_cache``
    and ``calibration_cache``)."""
    constants: dict = {}
    reader = _Reader("", "", {})
    reader.recording = False
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        relative = path.relative_to(root).with_suffix("")
        spellings = {".".join(relative.parts[i:]) for i in range(len(relative.parts))}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = reader.expr(node.value, _Scope(None))
                if isinstance(value, Strings):
                    for spelling in spellings:
                        constants[(spelling, node.targets[0].id)] = value
    return constants


def extract_uses(source: str, path: str = "<string>", constants: dict | None = None) -> tuple[list[Use], list[Dynamic]]:
    reader = _Reader(path, source, constants or {})
    reader.module(ast.parse(source))
    return sorted(reader.uses.values(), key=lambda u: (u.where, u.label)), reader.dynamic


def package_uses(root: Path, extra_files: tuple[Path, ...] = ()) -> tuple[list[Use], list[Dynamic]]:
    """Every use in the package at ``root`` (and in ``extra_files``, e.g. the GPU tests)."""
    constants = package_constants(root)
    # a module-level alias of a constant from a sibling (CALIBRATOR_CLASSES = CALIBRATORS) resolves in the reader
    uses, dynamic = [], []
    base = root.parent
    for path in [*sorted(root.rglob("*.py")), *extra_files]:
        text = path.read_text()
        if "tensorrt" not in text and "cuda" not in text:
            continue
        found, unresolved = extract_uses(text, str(path.relative_to(base)), constants)
        uses += found
        dynamic += unresolved
    return uses, dynamic


# -- the check ---------------------------------------------------------------------------------------------------


def exists(use: Use, major: int) -> bool:
    entry = references()[(use.api, major)]["modules"].get(use.module)
    if entry is None:
        return False
    if use.name == "<module>":
        return True
    parts = use.name.split(".")
    if use.owner:
        cls = use.owner
    else:
        if parts[0] not in entry["names"]:
            return False
        cls, parts = (parts[0] if parts[0] in entry["classes"] else ""), parts[1:]
    for part in parts:
        found, member_class = _member(entry, cls, part)
        if not found:
            return False
        cls = member_class
    return True


def check_uses(uses: list[Use]) -> list[str]:
    """One line per use that breaks the version rules (empty: every name exists where it is used)."""
    problems = []
    for use in uses:
        present = [m for m in use.versions if exists(use, m)]
        missing = [m for m in use.versions if m not in present]
        if use.guarded and not present or not use.guarded and missing:
            names = ", ".join(f"{references()[(use.api, m)]['api']} {references()[(use.api, m)]['version']}"
                              for m in (use.versions if use.guarded else missing))
            kind = "guarded, but in none of" if use.guarded else "not in"
            problems.append(f"{use.where}: {use.label} is {kind} {names}")
    return problems


def builder_flag_uses(where: str = "deploykit/trt/precision.py") -> list[Use]:
    """The builder flags the precision plans set (required in their TensorRT major) and clear (guarded: cleared only
    when present), for every precision and INT8 source on TensorRT 10 and 11: the names behind builder.py's
    ``getattr(trt.BuilderFlag, name)``."""
    # deploykit is imported only here: the reader itself needs nothing of it
    from deploykit.errors import DeployKitError
    from deploykit.store.layout import CALIBRATION_CACHE, FP16_MODEL, INT8_MODEL, MODEL, PRECISIONS
    from deploykit.trt.onnx_support import TrtTarget
    from deploykit.trt.precision import INT8_SOURCES, plan_precision

    everything = {MODEL, FP16_MODEL, INT8_MODEL, CALIBRATION_CACHE}
    uses = set()
    for major in TRT_MAJORS:
        for precision in PRECISIONS:
            for source in INT8_SOURCES:
                try:
                    plan = plan_precision(precision, TrtTarget(f"{major}.0"), everything, source)
                except DeployKitError:
                    continue
                uses |= {Use("tensorrt", "tensorrt", "BuilderFlag", f, where, (plan.tensorrt_major,)) for f in plan.flags}
                uses |= {Use("tensorrt", "tensorrt", "BuilderFlag", f, where, (plan.tensorrt_major,), True)
                         for f in plan.clear_flags}
    return sorted(uses, key=lambda u: (u.versions, u.name, u.guarded))
