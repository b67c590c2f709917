"""The code's structure (issue 25), held: no import cycle between deploykit's top-level parts, at most 10
function-level imports of its own modules outside cli/ (each saying why), no module over 400 lines, and every
write through the store's writer (no module outside deploykit/store/ opens a transaction of its own)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("import_layers", REPO / "tools" / "import_layers.py")
import_layers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = import_layers  # its dataclasses look their module up
_spec.loader.exec_module(import_layers)


def test_no_import_cycle_between_top_level_parts():
    assert import_layers.cycles(import_layers.part_edges(import_layers.imports(REPO))) == []


def test_function_level_imports_outside_cli_are_few_and_each_says_why():
    late = [imp for imp in import_layers.imports(REPO)
            if imp.in_function and import_layers.part(imp.module) != "cli"]
    assert len(late) <= 10, [f"{imp.module}:{imp.line}" for imp in late]
    assert all(imp.reason for imp in late), [f"{imp.module}:{imp.line}" for imp in late if not imp.reason]


def test_no_module_over_400_lines():
    long = {str(f.relative_to(REPO)): n for f in (REPO / "deploykit").rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 400}
    assert long == {}


def test_writes_go_through_the_store():
    """Only the store opens transactions; steps write through store/writer.py's step objects."""
    opens = re.compile(r"\btransaction\(|\bTransaction\(")
    outside = [str(f.relative_to(REPO)) for f in (REPO / "deploykit").rglob("*.py")
               if "store" not in f.relative_to(REPO / "deploykit").parts[:1] and opens.search(f.read_text())]
    assert outside == ["deploykit/package/publish.py"]  # a package folder: a Step over its own transaction
