"""A registry of modules keyed by name (timm's ``@register_model`` habit, not an if/elif chain).

It imports no model: ``deploykit.zoo`` imports the zoo's modules, which register themselves here.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..errors import DeployKitError


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., nn.Module]
    summary: str

    def accepted_args(self) -> set[str] | None:
        """Keyword names the factory takes, or None when it takes **kwargs."""
        params = inspect.signature(self.factory).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


_REGISTRY: dict[str, Entry] = {}


def register(name: str, summary: str | None = None):
    """Class or factory decorator: ``@register("cbam")``."""

    def wrap(factory):
        if name in _REGISTRY:
            raise ValueError(f"module {name!r} is registered twice")
        doc = summary or (inspect.getdoc(factory) or "").split("\n", 1)[0]
        _REGISTRY[name] = Entry(name, factory, doc)
        return factory

    return wrap


def list_modules(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `deploykit list` shows them"
        raise DeployKitError(f"unknown module {name!r}{hint}") from None


def create(name: str, **kwargs) -> nn.Module:
    entry = get(name)
    accepted = entry.accepted_args()
    unknown = sorted(set(kwargs) - accepted) if accepted is not None else []
    if unknown:
        raise DeployKitError(
            f"module {name!r} takes no argument {', '.join(map(repr, unknown))} "
            f"(it takes: {', '.join(sorted(accepted)) or 'nothing'})"
        )
    return entry.factory(**kwargs)
