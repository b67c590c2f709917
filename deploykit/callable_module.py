"""``deploykit.export(model, ...)`` and ``deploykit.verify(name)`` while ``deploykit.export`` and
``deploykit.verify`` are also packages.

Python sets a subpackage as an attribute of its parent when it is imported, so a function
``deploykit.export`` would be replaced by the package the moment anything imports
``deploykit.export.guards``. Renaming the packages would break every import of them; importing the API
eagerly would make ``import deploykit`` (and ``deploykit --help``) load torch. So the two packages are made
callable (a module's ``__class__`` may be a ModuleType subclass: the documented way to customise a
module), and calling one calls the function of the same name in deploykit/api.py.
"""

from __future__ import annotations

import sys
import types


def make_callable(module_name: str, function: str) -> None:
    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            from . import api

            return getattr(api, function)(*args, **kwargs)

    CallableModule.__call__.__doc__ = f"deploykit.api.{function}"
    sys.modules[module_name].__class__ = CallableModule
