"""Known model families (Ultralytics YOLO, torchvision, ...): what their own exporters switch before export.

A family's module is recognised by where its class is defined, so nothing here imports a family's package
unless the user's module already comes from it (the core never needs ultralytics or torchvision).
``prepare(model)`` returns None for a module of no known family, else a ``Prepared`` whose ``model`` is
what to export: the same tensors (parameters and buffers equal to the user's), with the family's export
switches set on a copy, so the user's own module is left as it was.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ..errors import DeployKitError


class FamilyRefusal(DeployKitError):
    """A known family's module that cannot be exported as it is; the message says what to export instead."""


@dataclass
class Prepared:
    model: object  # torch.nn.Module: what to export
    family: str  # e.g. "ultralytics"
    notes: list[str] = field(default_factory=list)  # what was switched, said by the CLI and kept in the manifest
    output_names: list[str] | None = None  # the family's own names for the flattened outputs, when it has them


# top-level package of the module's class -> the submodule of deploykit.families that knows it
_FAMILIES = {"ultralytics": "ultralytics", "torchvision": "torchvision"}


def prepare(model) -> Prepared | None:
    package = type(model).__module__.partition(".")[0]
    submodule = _FAMILIES.get(package)
    if submodule is None:
        return None
    try:
        family = importlib.import_module(f"{__name__}.{submodule}")
    except ModuleNotFoundError:  # not written yet for this family
        return None
    return family.prepare(model)


def as_exported(model) -> tuple[object, dict | None]:
    """The module as its family's own exporter would run it (a YOLO head in export mode, on a copy with the
    same tensors), and what was switched; the module itself and None for a module of no known family."""
    prepared = prepare(model)
    if prepared is None:
        return model.eval(), None
    return prepared.model.eval(), {"family": prepared.family, "notes": list(prepared.notes),
                                   "output_names": prepared.output_names}
