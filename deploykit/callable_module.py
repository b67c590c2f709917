"""``deploykit.export(model, ...)`` and ``deploykit.verify(name)`` while ``deploykit.export`` and
``deploykit.verify`` are also packages.

Python sets a subpackage as an attribute of its parent when it is imported, so a function
``deploykit.export`` would be replaced by the package the moment anything imports
``deploykit.export.guards``. Renaming the packages would break every import of them; importing the API
eagerly would make ``import deploykit`` (and ``deploykit --help``) load torch. So the two packages are made
callable (a module's ``__class__`` may be a ModuleType subclass: the documented way to customise a
module), and calling one calls the function of the same name in deploykit/api.py.

The import edge of that call is ``deploykit`` (the root package, deploykit/__init__.py) -> ``deploykit.api``,
the one layer above everything: the call asks the root package, which Python has always imported before any
of its subpackages (so it is in ``sys.modules``: nothing is imported here), for ``api_function(name)``, and the
root package imports api then. This module imports nothing of deploykit, so export and verify, which use it,
do not depend on api.
"""

from __future__ import annotations

import sys
import types

_ROOT = __name__.rpartition(".")[0]  # "deploykit"


def make_callable(module_name: str, function: str) -> None:
    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return sys.modules[_ROOT].api_function(function)(*args, **kwargs)

    CallableModule.__call__.__doc__ = f"deploykit.api.{function}"
    sys.modules[module_name].__class__ = CallableModule
