"""The import structure of deploykit, from its source (an ast scan; nothing is imported): issue 25's check.

    python tools/import_layers.py [REPO]            cycles between top-level parts, function-level import counts
    python tools/import_layers.py [REPO] -v         ... and every function-level import outside cli/, with its reason
    python tools/import_layers.py [REPO] --edges api,artifact,...
                                                    every import between the listed parts (to find a cycle's edges)

A *part* is a top-level module or package of deploykit (``deploykit.recipe.load`` is part ``recipe``). An edge
a -> b means some module of a imports some module of b, at module level or inside a function (both count: a
function-level import is an edge too, only a later one). A cycle is a strongly connected component of more than
one part. A *function-level import* is an import of a deploykit module inside a function; outside cli/ each
should say why on the line above it or at its end (``-v`` prints that comment as the reason).

Exit status 1 when there is a cycle, so it can guard CI.
"""

from __future__ import annotations

import ast
import collections
import itertools
import pathlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. deploykit.recipe.load
    target: str  # the imported module (or module.name for ``from pkg import name``)
    line: int
    in_function: bool
    reason: str  # the comment at the end of the import's line or on the line above it ("" when none)


def part(module: str) -> str:
    """deploykit.x.y -> x (deploykit itself is "__init__")."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "__init__"


def _comment(lines: list[str], lineno: int) -> str:
    here = lines[lineno - 1]
    if "#" in here:
        return here.split("#", 1)[1].strip()
    above = lines[lineno - 2].strip() if lineno >= 2 else ""
    return above[1:].strip() if above.startswith("#") else ""


def imports(repo: pathlib.Path) -> list[Import]:
    """Every import of a deploykit module in deploykit/, resolved to an absolute module name."""
    root = repo / "deploykit"
    found = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(repo).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            in_function, up = False, node
            while up in parents:
                up = parents[up]
                if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    in_function = True
                    break
            for target in targets:
                if target == "deploykit" or target.startswith("deploykit."):
                    found.append(Import(module, target, node.lineno, in_function, _comment(lines, node.lineno)))
    return found


def part_edges(found: list[Import]) -> dict[str, set[str]]:
    edges = collections.defaultdict(set)
    for imp in found:
        if part(imp.module) != part(imp.target):
            edges[part(imp.module)].add(part(imp.target))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one part (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []
    counter = itertools.count()

    def strong(v):
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return sorted(c for c in components if len(c) > 1)


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("-")]
    repo = pathlib.Path(args[0] if args and "," not in args[0] else pathlib.Path(__file__).resolve().parents[1])
    found = imports(repo)
    if "--edges" in argv:
        members = set(argv[argv.index("--edges") + 1].split(","))
        for imp in found:
            a, b = part(imp.module), part(imp.target)
            if a != b and a in members and b in members:
                print(f"{a:12s} -> {b:12s} {imp.module} -> {imp.target} (line {imp.line})")
        return 0
    found_cycles = cycles(part_edges(found))
    in_function = [imp for imp in found if imp.in_function]
    outside_cli = [imp for imp in in_function if part(imp.module) != "cli"]
    print("cycles between top-level parts:", found_cycles or "none")
    print("function-level imports of deploykit modules:", len(in_function), "outside cli/:", len(outside_cli))
    if "-v" in argv:
        for imp in outside_cli:
            print(f"   {imp.module}:{imp.line} -> {imp.target}  # {imp.reason or '(no reason given)'}")
    return 1 if found_cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
