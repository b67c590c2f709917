"""The module zoo, keyed by name: one file per module; importing this package registers every one.

    from deploykit import zoo
    zoo.list_modules("c*")          # ['cbam', 'composite', 'coordatt', 'cot']
    block = zoo.create("cbam", channels=64)

The registry itself (registry.py) imports no model (timm's ``_registry`` habit); this package does.
"""

import importlib
import pkgutil

from .registry import Entry, create, get, list_modules, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Entry", "create", "get", "list_modules", "register"]
