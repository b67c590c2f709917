"""The user's module: ``pkg.mod:factory`` resolved to a callable, with one-line errors.

The current directory is importable, as with ``python -m``: ``--module mynet:build`` finds ./mynet.py
without PYTHONPATH. Any importable callable returning an nn.Module works (``timm.models:convnext_atto``,
``torchvision.models:resnet18``); attributes may be dotted (``pkg.mod:Class.from_config``).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable

from ..errors import DeployKitError
from ..guard import user_code


def _current_directory_importable() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def import_factory(spec: str, origin="--module") -> Callable:
    """``pkg.mod:factory`` -> the callable, with one-line errors that say what was tried."""
    mod_name, sep, attr = (spec or "").partition(":")
    if not sep or not mod_name or not attr:
        raise DeployKitError(f"{origin}: factory {spec!r} must look like package.module:factory")
    _current_directory_importable()
    try:
        with user_code(f"importing {mod_name!r} (for {spec})"):
            module = importlib.import_module(mod_name)
    except DeployKitError as exc:
        cause = exc.__cause__
        if isinstance(cause, ModuleNotFoundError) and cause.name and mod_name.startswith(cause.name):
            raise DeployKitError(f"{origin}: cannot import {mod_name!r}: no module {cause.name!r} in the current "
                                 f"directory ({os.getcwd()}) or on sys.path; check the name, or install the "
                                 "package that provides it") from None
        raise DeployKitError(f"{origin}: {exc}") from None
    target = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            break
    if not callable(target):
        public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n, None)))[:8]
        raise DeployKitError(f"{origin}: {mod_name!r} has no callable {attr!r}"
                             + (f" (it has: {', '.join(public)}{', ...' if len(public) == 8 else ''})" if public else ""))
    return target
