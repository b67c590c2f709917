"""How the pinned API references in ``data/*_api.json`` are made from their sources (none of them is importable here).

A reference lists what a Python module offers: its top-level names, and per class its bases and members, each member
with the class it returns when the source says so (``Builder.create_builder_config -> IBuilderConfig``), which lets
``api_check`` follow objects that come from TensorRT. Three sources, each read without running TensorRT or CUDA:

- TensorRT 10.x: the ``tensorrt-stubs`` wheel (pybind11-stubgen output of the real bindings), parsed with ``ast``.
  It cannot be a test dependency: its metadata requires ``tensorrt==10.13.0.35``, a placeholder package that
  downloads the real wheel from NVIDIA's own index at install time. So the reference is made from the wheel once and
  committed with the wheel's sha256.
- TensorRT 11.x: the pybind11 binding sources of NVIDIA/TensorRT at the 11.x release tag (``python/src/**.cpp``:
  ``py::class_``/``py::enum_`` and their ``.def*``/``.value`` chains) plus the Python package's ``__init__.py``.
  Scanned by hand-written code because no library parses pybind11 declarations; checked against the 10.x stubs by
  running the same scan on the 10.x sources (``test_trt_api.py``).
- cuda-python: ``dir()`` of ``cuda.bindings.runtime`` and ``cuda.bindings.utils`` from the cuda-bindings wheels
  (their Cython modules load the CUDA runtime lazily, so importing them needs no CUDA), in a throwaway process.

Regenerate: ``PYTHONPATH=tools python -m trt_api_check.api_sources --help`` (from the repository root).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

# -- common ------------------------------------------------------------------------------------------------------


def _public(name: str) -> bool:
    return not name.startswith("_") or name in ("__version__", "__init__")


def _finish(names: dict, classes: dict) -> dict:
    """One module's entry: member types that are not classes of this module become ""; sorted for stable diffs."""
    for spec in classes.values():
        spec["members"] = {m: (t if t in classes else "") for m, t in sorted(spec["members"].items())}
        spec["bases"] = [b for b in spec["bases"] if b in classes]
    return {"names": dict(sorted((k, v) for k, v in names.items() if _public(k))), "classes": dict(sorted(classes.items()))}


def reference(api: str, version: str, sources: list[str], modules: dict, notes: list[str] = ()) -> dict:
    return {"api": api, "version": version, "sources": list(sources), "notes": list(notes), "modules": modules}


def dumps(ref: dict) -> str:
    """JSON with one line per class: readable diffs at a third of the indented size."""
    lines = ["{"]
    for key in ("api", "version", "sources", "notes"):
        lines.append(f" {json.dumps(key)}: {json.dumps(ref[key])},")
    for key in ref:
        if key not in ("api", "version", "sources", "notes", "modules"):
            lines.append(f" {json.dumps(key)}: {json.dumps(ref[key])},")
    lines.append(' "modules": {')
    for i, (module, entry) in enumerate(ref["modules"].items()):
        lines.append(f"  {json.dumps(module)}: {{")
        lines.append(f'   "names": {json.dumps(entry["names"])},')
        lines.append('   "classes": {')
        classes = list(entry["classes"].items())
        for j, (name, spec) in enumerate(classes):
            lines.append(f"    {json.dumps(name)}: {json.dumps(spec)}" + ("," if j < len(classes) - 1 else ""))
        lines.append("   }")
        lines.append("  }" + ("," if i < len(ref["modules"]) - 1 else ""))
    lines.append(" }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- TensorRT 10.x: the stubs ----------------------------------------------------------------------------------


def _annotation_class(node) -> str:
    """``IBuilderConfig``, ``ILogger.Severity``, ``typing.ClassVar[BuilderFlag]`` -> the class name, else ""."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _annotation_class(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return ""
    if isinstance(node, ast.Subscript):
        outer = ast.unparse(node.value)
        return _annotation_class(node.slice) if outer in ("typing.ClassVar", "ClassVar") else ""
    if isinstance(node, (ast.Name, ast.Attribute)):
        text = ast.unparse(node)
        for prefix in ("tensorrt_bindings.tensorrt.", "tensorrt.", "typing."):
            text = text.removeprefix(prefix)
        return text
    return ""


def _stub_class(node: ast.ClassDef, prefix: str, classes: dict) -> None:
    name = prefix + node.name
    members: dict[str, str] = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(item.name):
            members[item.name] = _annotation_class(item.returns) if item.returns is not None else ""
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and _public(item.target.id):
            members[item.target.id] = _annotation_class(item.annotation)
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                if isinstance(target, ast.Name) and _public(target.id):
                    members[target.id] = ""
        elif isinstance(item, ast.ClassDef):
            members[item.name] = f"{name}.{item.name}"
            _stub_class(item, f"{name}.", classes)
    classes[name] = {"bases": [_annotation_class(b) for b in node.bases], "members": members}


def parse_stub(text: str) -> ast.Module:
    """``ast.parse`` of a stub that pybind11-stubgen made slightly invalid (10.13: ``add_scale_nd`` has a parameter
    without a default after ones with defaults): such a ``def`` line keeps its name and return annotation only."""
    lines = text.splitlines()
    for _ in range(len(lines)):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as exc:
            number = (exc.lineno or 0) - 1
            fixed = re.sub(r"^(\s*def \w+)\(.*\)(\s*->[^:]*:|:)(\s*\.\.\.)?\s*$", r"\1(self, *args, **kwargs)\2\3",
                           lines[number]) if 0 <= number < len(lines) else None
            if fixed is None or fixed == lines[number]:
                raise
            lines[number] = fixed
    raise SyntaxError("the stub does not parse")


def stub_module(bindings_pyi: str, package_pyi: str) -> dict:
    """``tensorrt``'s entry from ``tensorrt_bindings/tensorrt.pyi`` (the classes) and ``tensorrt/__init__.pyi``."""
    classes: dict[str, dict] = {}
    names: dict[str, str] = {}
    for node in parse_stub(bindings_pyi).body:
        if isinstance(node, ast.ClassDef):
            _stub_class(node, "", classes)
    for node in parse_stub(package_pyi).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tensorrt"):
            for alias in node.names:
                names[alias.asname or alias.name] = "class" if alias.name in classes else "name"
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = "function" if isinstance(node, ast.FunctionDef) else "class"
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = "name"
    return _finish(names, classes)


# -- TensorRT 11.x: the pybind11 binding sources ------------------------------------------------------------------

_MEMBER = re.compile(r'\.(?:def|def_property|def_property_readonly|def_readwrite|def_readonly|def_static|'
                     r'def_property_static|value)\(\s*"([A-Za-z_][A-Za-z_0-9]*)"')
_HEAD = re.compile(r'^py::(class_|enum_)<')
_VAR_DEF = re.compile(r'^([A-Za-z_]\w*)\s*\.\s*def')
_MODULE_DEF = re.compile(r'\bm\.def\(\s*"([A-Za-z_]\w*)"')


def _strip_comments(code: str) -> str:
    """C++ without comments; string and char literals are kept intact (docstrings hold '//' in URLs)."""
    out, i, n = [], 0, len(code)
    while i < n:
        if code.startswith("//", i):
            i = code.find("\n", i)
            i = n if i < 0 else i
        elif code.startswith("/*", i):
            end = code.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif code.startswith('R"', i):
            delim = code[i + 2:code.find("(", i)]
            end = code.find(f'){delim}"', i)
            end = n if end < 0 else end + len(delim) + 2
            out.append(code[i:end])
            i = end
        elif code[i] in "\"'":
            quote, j = code[i], i + 1
            while j < n and code[j] != quote:
                j += 2 if code[j] == "\\" else 1
            out.append(code[i:j + 1])
            i = j + 1
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


def _statements(code: str):
    """Split at ';' outside parentheses, brackets and string literals (lambda bodies sit inside parentheses)."""
    depth, start, i, n = 0, 0, 0, len(code)
    while i < n:
        c = code[i]
        if c in "\"'":
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            i = j
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth == 0:
            yield code[start:i].strip()
            start = i + 1
        elif c in "{}" and depth == 0:
            # a block boundary (function, class, if): restart unless this brace belongs to a binding's
            # brace-initialisation (``py::class_<ILogger> binding{m, "ILogger"}``)
            pending = code[start:i].strip()
            if not (pending.startswith("py::") and c == "{" or pending.startswith("py::") and "{" in pending):
                start = i + 1
        i += 1


def _template_args(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated template arguments of ``<...>`` opening at ``start``, and the index after ``>``."""
    depth, args, current, i = 0, [], [], start
    while i < len(text):
        c = text[i]
        if c == "<":
            depth += 1
            if depth > 1:
                current.append(c)
        elif c == ">":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
            current.append(c)
        elif c == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(c)
        i += 1
    return args, i


def pybind_module(cpp_sources: list[str], package_py: str) -> dict:
    """``tensorrt``'s entry from pybind11 binding sources and the package's Python ``__init__.py``."""
    classes: dict[str, dict] = {}
    cpp_to_python: dict[str, str] = {}
    variables: dict[str, str] = {}   # C++ variable holding a binding -> the Python class
    pending_bases: dict[str, list[str]] = {}
    module: dict[str, str] = {}  # top-level names
    for source in cpp_sources:
        # preprocessor lines dropped, both branches kept: the few conditionals guard Windows includes and the
        # full-vs-lean binding sets (EXPORT_ALL_BINDINGS is on in the tensorrt package)
        code = "\n".join(line for line in _strip_comments(source).splitlines() if not line.lstrip().startswith("#"))
        for statement in _statements(code):
            statement = re.sub(r"\s+", " ", statement)
            if _HEAD.match(statement):
                kind = _HEAD.match(statement).group(1)
                args, end = _template_args(statement, statement.index("<"))
                head = re.match(r'\s*(\w+)?\s*[({]\s*(\w+)\s*,\s*"(\w+)"', statement[end:])
                if not head:
                    continue
                variable, scope, name = head.groups()
                owner = variables.get(scope)  # an enum bound inside a class binding: ILogger.Severity
                full = f"{owner}.{name}" if owner else name
                cpp_to_python[args[0].split("::")[-1]] = full
                spec = classes.setdefault(full, {"bases": [], "members": {}})
                pending_bases[full] = [a.split("::")[-1] for a in args[1:]]
                if variable:
                    variables[variable] = full
                if owner:
                    classes[owner]["members"][name] = full
                else:
                    module[name] = "class"
                names = _MEMBER.findall(statement)
                spec["members"].update({m: "" for m in names})
                if kind == "enum_":  # pybind11 gives every enum value these
                    spec["members"].update({"name": "", "value": ""})
                if kind == "enum_" and ".export_values()" in statement:
                    target = classes[owner]["members"] if owner else module
                    for value in names:
                        target[value] = "" if owner else "name"
            elif _VAR_DEF.match(statement) and _VAR_DEF.match(statement).group(1) in variables:
                target = classes[variables[_VAR_DEF.match(statement).group(1)]]
                target["members"].update({m: "" for m in _MEMBER.findall(statement)})
            for function in _MODULE_DEF.findall(statement):
                module[function] = "function"
    for name, bases in pending_bases.items():
        classes[name]["bases"] = [cpp_to_python[b] for b in bases if b in cpp_to_python]
    # the package __init__ is a template (##TENSORRT_MODULE## and friends are filled in when the wheel is made)
    for node in ast.parse(re.sub(r"##(\w+)##", lambda m: "tensorrt" if m.group(1) == "TENSORRT_MODULE" else "_",
                                 package_py)).body:
        if isinstance(node, ast.FunctionDef):
            module[node.name] = "function"
        elif isinstance(node, ast.Assign):
            module.update({t.id: "name" for t in node.targets if isinstance(t, ast.Name)})
    return _finish(module, classes)


# -- cuda-python: the imported bindings ---------------------------------------------------------------------------


def imported_module(module) -> dict:
    """An imported module's entry: its public names; its own classes with their public attributes."""
    classes, names = {}, {}
    for name in dir(module):
        if not _public(name):
            continue
        value = getattr(module, name)
        names[name] = "class" if isinstance(value, type) else "function" if callable(value) else "name"
        if isinstance(value, type) and value.__module__.startswith("cuda"):
            classes[name] = {"bases": [], "members": {m: "" for m in dir(value) if _public(m)}}
    return _finish(names, classes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trt_api_check.api_sources", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    stubs = sub.add_parser("stubs", help="an unpacked tensorrt-stubs wheel")
    stubs.add_argument("root", type=Path)
    pybind = sub.add_parser("pybind", help="a checkout of NVIDIA/TensorRT at a release tag")
    pybind.add_argument("root", type=Path)
    cuda = sub.add_parser("cuda", help="cuda.bindings importable (e.g. PYTHONPATH=an unpacked cuda-bindings wheel)")
    cuda.add_argument("modules", nargs="+", help="e.g. cuda.bindings.runtime cuda.bindings.utils")
    cuda.add_argument("--names-only", nargs="*", default=[], help="modules recorded without their classes "
                      "(cuda.cudart: the old layout, a deprecated alias of cuda.bindings.runtime)")
    for p in (stubs, pybind, cuda):
        p.add_argument("--version", required=True)
        p.add_argument("--source", action="append", default=[], help="a URL recorded in the reference (repeat)")
        p.add_argument("--note", action="append", default=[], help="a note recorded in the reference (repeat)")
        p.add_argument("--field", action="append", default=[], metavar="KEY=JSON",
                       help="an extra top-level field, e.g. the migration guide's removed names (repeat)")
    args = parser.parse_args(argv)
    if args.kind == "stubs":
        modules = {"tensorrt": stub_module((args.root / "tensorrt_bindings" / "tensorrt.pyi").read_text(),
                                           (args.root / "tensorrt" / "__init__.pyi").read_text())}
        api = "tensorrt"
    elif args.kind == "pybind":
        cpp = [p.read_text() for p in sorted((args.root / "python" / "src").rglob("*.cpp"))]
        init = args.root / "python" / "packaging" / "bindings_wheel" / "tensorrt" / "__init__.py"
        modules, api = {"tensorrt": pybind_module(cpp, init.read_text())}, "tensorrt"
    else:
        import importlib

        modules = {name: imported_module(importlib.import_module(name)) for name in args.modules + args.names_only}
        for name in args.names_only:
            modules[name]["classes"] = {}
        api = "cuda-bindings"
    ref = reference(api, args.version, args.source, modules, args.note)
    for field in args.field:
        key, _, value = field.partition("=")
        ref[key] = json.loads(value)
    print(dumps(ref), end="")


if __name__ == "__main__":
    main()
