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
    """Every recipe exported (once per session, shared with tests/artifact_cache.py): (folder, results)."""
    from .artifact_cache import export_result, shared_root

    results = {name: export_result(tmp_path_factory, name) for name in recipe_names()}
    return shared_root(tmp_path_factory), results


def require_gpu():
    """The TensorRT/GPU probe's result, or a skip with its one-line reason (a failure under REQUIRE_GPU=1)."""
    from deploykit.trt.probe import probe

    machine = probe()
    if machine.ok:
        return machine
    if os.environ.get("REQUIRE_GPU") == "1":
        pytest.fail(f"REQUIRE_GPU=1 but {machine.missing}")
    pytest.skip(machine.missing)
