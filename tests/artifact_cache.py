"""Each recipe exported at most once per test session, shared by every test that needs an artifact.

Tests that need a few artifacts call ``exported_artifact``; the ``exported`` fixture (conftest) asks for all
of them. Treat the shared folders as read-only: ``artifact_copy`` gives a private copy to write into.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deploykit.export import ExportOptions, ExportResult, export_onnx
from deploykit.recipe import find_recipe, recipe_names

from .conftest import RECIPES

# The shared artifacts store a 4 MB PyTorch reference instead of the default 64 MB: tests copy artifacts into their
# own folders (and the fault tests at every step of an export), and 57 MB per zoo block cost the suite ~30 s. Their
# largest shapes are left out of the store, so a check there runs the zoo module (the store's fallback), which the
# suite tests too; the default bound is exercised by tests/test_python_api.py, test_reference_store.py and README's.
SHARED_REFERENCE_MB = 4

_ROOTS: dict[str, Path] = {}
_RESULTS: dict[tuple[str, str], ExportResult] = {}


def has_recipe(name: str) -> bool:
    return name in recipe_names(RECIPES)


def shared_root(tmp_path_factory) -> Path:
    key = str(tmp_path_factory.getbasetemp())
    if key not in _ROOTS:
        _ROOTS[key] = tmp_path_factory.mktemp("artifacts")
    return _ROOTS[key]


def export_result(tmp_path_factory, name: str) -> ExportResult:
    key = (str(tmp_path_factory.getbasetemp()), name)
    if key not in _RESULTS:
        _RESULTS[key] = export_onnx(find_recipe(name, RECIPES), shared_root(tmp_path_factory),
                                    ExportOptions(reference_mb=SHARED_REFERENCE_MB))
    return _RESULTS[key]


def exported_artifact(tmp_path_factory, name: str) -> Path:
    """``<shared root>/<name>/`` exported with the default options (but the reference's bound, above)."""
    return export_result(tmp_path_factory, name).path.parent


def artifact_copy(tmp_path_factory, name: str, dest: Path) -> Path:
    """A private copy of the artifact as export wrote it, for tests that write into it (e.g. the manifest's triton
    record); what other tests' verify runs left in the shared copy (plots/, verify.json, report.md) stays behind."""
    ignore = shutil.ignore_patterns("plots", "verify.json", "report.md")
    return Path(shutil.copytree(exported_artifact(tmp_path_factory, name), dest / name, ignore=ignore))


def shared_out(tmp_path_factory, *names: str) -> Path:
    """The shared artifact folder with (at least) ``names`` exported: for tests that pass ``--out``."""
    for name in names:
        export_result(tmp_path_factory, name)
    return shared_root(tmp_path_factory)
