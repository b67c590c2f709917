import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
TABLES = Path(__file__).resolve().parent / "state_dict_tables"

os.environ.setdefault("DEPLOYKIT_RECIPES", str(RECIPES))
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n: each worker gets its share of the cores (set before torch loads;
    # oversubscribed OpenMP threads spin against each other)
    _share = (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.toml"))


def slow_composite(names) -> list:
    """Parameters for `names`, composite marked slow (the network takes ~15 s where a block takes ~1 s; the full suite
    runs it)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n == "composite" else n for n in names]


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


# The fast tier (-m "not slow") keeps one case of each kind: in these files, every parametrized case but the first
# of each test is marked slow (the full suite, CI's command, runs them all).
ONE_CASE_PER_KIND = ("reliability/", "test_range_analysis.py", "test_user_module.py", "test_python_api.py",
                     "test_families.py")


def pytest_collection_modifyitems(config, items):
    seen = set()
    for item in items:
        path = item.nodeid.split("::")[0]
        if not any(part in path for part in ONE_CASE_PER_KIND) or not hasattr(item, "callspec"):
            continue
        function = item.nodeid.split("[")[0]
        if function in seen:
            item.add_marker(pytest.mark.slow)
        seen.add(function)
