"""The user's module: ``pkg.mod:factory`` resolved to a callable, with one-line errors."""

from __future__ import annotations

import importlib
from typing import Callable

from ..errors import DeployKitError


def import_factory(spec: str, origin="--module") -> Callable:
    """``pkg.mod:factory`` -> the callable, with one-line errors."""
    mod_name, sep, attr = (spec or "").partition(":")
    if not sep or not mod_name or not attr:
        raise DeployKitError(f"{origin}: factory {spec!r} must look like package.module:factory")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise DeployKitError(f"{origin}: cannot import {mod_name!r} for factory {spec!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise DeployKitError(f"{origin}: {mod_name!r} has no callable {attr!r}")
    return factory
