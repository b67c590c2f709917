"""The code this benchmark reuses from benchmarks/real_networks/ (the timm benchmark), loaded by path under its own
module names, so that folder's modules (models.py, check.py, run.py...) never shadow this folder's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REAL_NETWORKS = Path(__file__).resolve().parent.parent / "real_networks"


def real_networks(name: str):
    """benchmarks/real_networks/NAME.py as the module ``real_networks_NAME`` (loaded once)."""
    key = f"real_networks_{name}"
    if key in sys.modules:
        return sys.modules[key]
    saved_path, saved_modules = list(sys.path), {m: sys.modules.get(m) for m in ("models", "deploykit_cli")}
    sys.path.insert(0, str(REAL_NETWORKS))  # its run.py imports its siblings by plain name
    try:
        spec = importlib.util.spec_from_file_location(key, REAL_NETWORKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
        for m, held in saved_modules.items():  # its siblings stay reachable from it, not by their plain names
            if held is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = held
    return module
