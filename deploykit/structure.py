"""A module's output structure: flattened into named tensors for ONNX, and given back as it was.

A forward may return a tensor, or dicts, lists, tuples, namedtuples and dataclasses (Hugging Face's
ModelOutput) of them, nested, with None entries. ONNX has flat, named outputs, so the tensors are taken
in order (None left out) and each is named by its path: a dict's key, a field's name, a position
(``out``, ``aux``, ``1.boxes``, ``2.0``; a bare tensor is ``output``). The structure itself is recorded
as JSON (``describe``) in the manifest, and ``rebuild`` gives a runtime's flat outputs back in it.

torch.utils._pytree does the same flattening for torch.export, but its specs are not JSON a manifest can
hold without naming the user's classes (a namedtuple's or dataclass's type is imported on load, which an
artifact must never make deploykit do), and it has no stable names: hence this small walk.

The base layer: imports nothing else of deploykit but its errors.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping

from .errors import DeployKitError

CALLS = ("args", "list", "kwargs")  # forward(*tensors), forward([tensors]), forward(**{name: tensor})
BARE_NAME = "output"  # the one name of a module that returns a single tensor


class StructureError(DeployKitError):
    """An output deploykit cannot export (a number, a string...), named by its path."""


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _is_dataclass_instance(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _key(key, path: str) -> str:
    if isinstance(key, bool) or not isinstance(key, (str, int)) or str(key) == "":
        raise StructureError(f"the output at {path or 'the top'} has a key {key!r}: deploykit names outputs by "
                             "their string or integer keys")
    return str(key)


def flatten(result, is_tensor) -> tuple[list, dict | None]:
    """(tensors in order, the structure as JSON with each tensor's index): ``is_tensor`` says what a leaf is
    (torch.Tensor for a module's output, np.ndarray for a runtime's)."""
    leaves: list = []

    def walk(value, path: str):
        if value is None:
            return None
        if is_tensor(value):
            leaves.append(value)
            return {"tensor": len(leaves) - 1}
        if _is_dataclass_instance(value):  # before dict: ModelOutput is both, and its None fields are not items
            fields = [f.name for f in dataclasses.fields(value)]
            return {"dataclass": type(value).__name__,
                    "fields": [[f, walk(getattr(value, f), _join(path, f))] for f in fields]}
        if _is_namedtuple(value):
            return {"namedtuple": type(value).__name__,
                    "fields": [[f, walk(v, _join(path, f))] for f, v in zip(type(value)._fields, value)]}
        if isinstance(value, Mapping):
            return {"dict": [[k, walk(v, _join(path, _key(k, path)))] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            kind = "list" if isinstance(value, list) else "tuple"
            return {kind: [walk(v, _join(path, str(i))) for i, v in enumerate(value)]}
        raise StructureError(f"the output at {path or 'the top'} is a {type(value).__name__}: deploykit exports "
                             "tensors (and dicts, lists, tuples, namedtuples and dataclasses of them); return it as "
                             "a tensor, or leave it out of forward's result")

    tree = walk(result, "")
    return leaves, tree


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def leaf_names(tree) -> list[str]:
    """Each tensor's name, by its path, in flattening order (a bare tensor is ``output``)."""
    names: list[str] = []

    def walk(node, path: str):
        if node is None:
            return
        if "tensor" in node:
            names.append(path or BARE_NAME)
        elif "fields" in node or "dict" in node:
            for key, child in node.get("fields", node.get("dict")):
                walk(child, _join(path, str(key)))
        else:
            for i, child in enumerate(node.get("list", node.get("tuple", []))):
                walk(child, _join(path, str(i)))

    walk(tree, "")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise StructureError(f"two outputs would both be named {repeated[0]!r} (a key holds a '.'); "
                             "give the outputs distinct keys")
    return names


def describe(tree, names: list[str]):
    """The structure for the manifest: each tensor's index replaced by its output name."""
    if tree is None:
        return None
    if "tensor" in tree:
        return {"tensor": names[tree["tensor"]]}
    out = {k: v for k, v in tree.items() if k not in ("fields", "dict", "list", "tuple")}
    for kind in ("fields", "dict"):
        if kind in tree:
            out[kind] = [[key, describe(child, names)] for key, child in tree[kind]]
    for kind in ("list", "tuple"):
        if kind in tree:
            out[kind] = [describe(child, names) for child in tree[kind]]
    return out


def rebuild(described, outputs: Mapping):
    """A runtime's ``{name: array}`` in the module's own structure (a manifest's ``describe`` JSON).

    Dicts, lists, tuples and Nones come back as they were; a namedtuple as a namedtuple of the same name and
    fields, a dataclass as a dataclass of the same name and fields (the user's own classes are not imported:
    an artifact names them, it does not get to run them)."""
    if described is None:
        return None
    if not isinstance(described, dict):
        raise DeployKitError(f"the manifest's output_structure is malformed ({type(described).__name__})")
    if "tensor" in described:
        return outputs[described["tensor"]]
    if "dict" in described:
        return {key: rebuild(child, outputs) for key, child in described["dict"]}
    if "list" in described:
        return [rebuild(child, outputs) for child in described["list"]]
    if "tuple" in described:
        return tuple(rebuild(child, outputs) for child in described["tuple"])
    fields = [(str(key), rebuild(child, outputs)) for key, child in described.get("fields", [])]
    type_name = str(described.get("namedtuple") or described.get("dataclass") or "Output")
    type_name = type_name if type_name.isidentifier() else "Output"
    names = [f if f.isidentifier() else f"field_{i}" for i, (f, _) in enumerate(fields)]
    if "namedtuple" in described:
        return collections.namedtuple(type_name, names)(*(v for _, v in fields))
    return dataclasses.make_dataclass(type_name, names)(*(v for _, v in fields))
