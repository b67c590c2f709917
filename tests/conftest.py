import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
TABLES = Path(__file__).resolve().parent / "state_dict_tables"

os.environ.setdefault("DEPLOYKIT_RECIPES", str(RECIPES))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.toml"))


@pytest.fixture(scope="session")
def recipe_dir() -> Path:
    return RECIPES


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Every recipe exported once per test session, shared by the export/verify/calibrate tests."""
    from deploykit.export import export_onnx
    from deploykit.recipe import load_all

    out = tmp_path_factory.mktemp("artifacts")
    results = {r.name: export_onnx(r, out) for r in load_all(RECIPES)}
    return out, results
