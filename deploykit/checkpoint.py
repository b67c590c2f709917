"""The torch files of an artifact: weights.pt (the state_dict) and buffers.pt (the non-persistent buffers),
written and read back. Below both the artifact reader (artifact.py) and export (export/weights.py), so
neither imports the other for them. ``torch.load(weights_only=True)`` everywhere: no code runs from a file.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from .errors import DeployKitError, first_line


def state_dict_bytes(model: nn.Module) -> bytes:
    """weights.pt: the module's state_dict, as ``model.load_state_dict(torch.load(path))`` takes it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def buffers_bytes(model: nn.Module) -> bytes | None:
    """buffers.pt: every tensor the state_dict leaves out (buffers registered with ``persistent=False``, e.g. a
    fixed random projection), so the artifact holds every tensor of the model; None when there is none."""
    extra = non_persistent_buffers(model)
    if not extra:
        return None
    buffer = io.BytesIO()
    torch.save(extra, buffer)
    return buffer.getvalue()


def load_checkpoint(model: nn.Module, path: str | Path, what: str = "checkpoint") -> nn.Module:
    """Load a state_dict (or a dict holding one under "state_dict"/"model") with strict=True.

    ``torch.load(weights_only=True)`` runs no code from the file; everything it refuses, and any file that
    is not a state dict (``torch.save([1, 2, 3])``), is one line naming the file.
    """
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DeployKitError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise DeployKitError(f"{what} {path} is a folder, not a file") from None
    except Exception as exc:  # torch.load raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        raise DeployKitError(f"{what} {path} cannot be read safely (weights_only): {first_line(exc)}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise DeployKitError(f"{what} {path} is not a state dict (it holds a {type(state).__name__}); "
                             "save one with torch.save(model.state_dict(), path)")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError, AttributeError, KeyError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else first_line(exc)
        raise DeployKitError(f"{what} {path} does not fit the module: {detail}") from None
    return model.eval()


def load_buffers(model: nn.Module, path: Path, what: str = "the artifact's non-persistent buffers") -> nn.Module:
    """Put buffers.pt's tensors back (the module a later process builds may have drawn others)."""
    try:
        tensors = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types; weights_only runs no code from the file
        raise DeployKitError(f"{what} {path} cannot be read safely (weights_only): {first_line(exc)}") from None
    restore_non_persistent(model, tensors, f"{what} {path}")
    return model


def non_persistent_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers registered with ``persistent=False``, by their full name: part of the model, not of its state_dict."""
    found = {}
    for prefix, module in model.named_modules():
        for name in sorted(getattr(module, "_non_persistent_buffers_set", ())):
            tensor = module._buffers.get(name)
            if tensor is not None:
                found[f"{prefix}.{name}" if prefix else name] = tensor.detach().clone()
    return found


def restore_non_persistent(model: nn.Module, tensors, what: str) -> None:
    """Put the saved non-persistent buffers back: the module a later process builds may have drawn others."""
    expected = non_persistent_buffers(model)
    if not isinstance(tensors, dict) or set(tensors) != set(expected):
        raise DeployKitError(f"{what} does not fit the module: its non-persistent buffers are "
                             f"{sorted(tensors) if isinstance(tensors, dict) else type(tensors).__name__}, "
                             f"the module has {sorted(expected)}")
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[name].shape:
            raise DeployKitError(f"{what} does not fit the module: non-persistent buffer {name} has another shape")
        prefix, _, leaf = name.rpartition(".")
        module = model.get_submodule(prefix)
        module._buffers[leaf] = tensor.to(dtype=expected[name].dtype)
