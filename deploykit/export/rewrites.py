"""Exact export rewrites: swap modules whose ONNX export is wrong or refused under dynamic H/W.

torch's dynamo exporter bakes non-global adaptive pooling into an AveragePool whose kernel is the
example input's (right at that size, wrong at every other) and the TorchScript exporter refuses it.
Each replacement here computes the same numbers as the original for any input size, using only ops
TensorRT's ONNX parser supports (Range, comparisons, Cast, Div, MatMul, ReduceMean, ReduceMax).
They are applied to a deep copy; the user's module is never touched.
No library does this swap for us (torch has no "export-safe adaptive pooling"), hence the hand code.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ExportRefused


def _pair(size) -> tuple:
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def bin_averaging_matrix(length: torch.Tensor | int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, length) matrix whose row i averages PyTorch's adaptive bin i.

    Bin i spans [floor(i*L/bins), ceil((i+1)*L/bins)), exactly as ATen's adaptive_avg_pool computes it,
    so the result is exact for every L, divisible or not (e.g. 37 into 4 bins).
    """
    positions = torch.arange(length, device=like.device)
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * length, bins, rounding_mode="floor")
    end = torch.div((index + 1) * length + bins - 1, bins, rounding_mode="floor")
    inside = (positions.unsqueeze(0) >= start.unsqueeze(1)) & (positions.unsqueeze(0) < end.unsqueeze(1))
    counts = (end - start).to(like.dtype).unsqueeze(1)
    return inside.to(like.dtype) / counts


class ExactAdaptiveAvgPool2d(nn.Module):
    """AdaptiveAvgPool2d that stays exact at every H, W once exported (no baked kernel).

    ``None`` in the output size keeps that axis; 1 becomes a mean; any other size becomes a
    product with a bin-averaging matrix built from the runtime size.
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _pair(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_h, out_w = self.output_size
        if out_h == 1 and out_w == 1:
            return x.mean(dim=(-2, -1), keepdim=True)
        if out_h == 1:
            x = x.mean(dim=-2, keepdim=True)
        elif out_h is not None:
            x = torch.matmul(bin_averaging_matrix(x.shape[-2], out_h, x), x)
        if out_w == 1:
            x = x.mean(dim=-1, keepdim=True)
        elif out_w is not None:
            x = torch.matmul(x, bin_averaging_matrix(x.shape[-1], out_w, x).transpose(0, 1))
        return x

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class GlobalMaxPool2d(nn.Module):
    """AdaptiveMaxPool2d(1) as a ReduceMax: values only, no Indices output (TensorRT rejects those)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=(-2, -1), keepdim=True)


class ExportableMultiheadAttention(nn.Module):
    """nn.MultiheadAttention without the reshape that bakes the sequence length into the graph.

    The TorchScript exporter records ``view(k.shape[0], ...)`` inside ``multi_head_attention_forward``
    as a constant (pytorch/pytorch#120075), so the ONNX only accepts the export-time length. This
    computes the same thing with shape-free reshapes, sharing the original parameters. Calls with
    masks go to the original implementation (the post-export checks then judge the result).
    """

    def __init__(self, original: nn.MultiheadAttention):
        super().__init__()
        self.original = original
        self.heads = original.num_heads
        self.head_dim = original.head_dim
        self.batch_first = original.batch_first

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (L, N, E) -> (N, heads, L, head_dim)
        return x.unflatten(-1, (self.heads, self.head_dim)).permute(1, 2, 0, 3)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            return self.original(query, key, value, key_padding_mask, need_weights, attn_mask,
                                 average_attn_weights, is_causal)
        mha = self.original
        if self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)
        q = self._split(nn.functional.linear(query, w_q, b_q)) * (self.head_dim ** -0.5)
        k = self._split(nn.functional.linear(key, w_k, b_k))
        v = self._split(nn.functional.linear(value, w_v, b_v))
        weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)), dim=-1)
        out = torch.matmul(weights, v).permute(2, 0, 1, 3).flatten(-2)  # (L, N, E)
        out = mha.out_proj(out)
        if self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights


def _mha_is_plain(module: nn.MultiheadAttention) -> bool:
    return (module._qkv_same_embed_dim and module.bias_k is None and module.bias_v is None
            and not module.add_zero_attn)


@dataclass(frozen=True)
class Rewrite:
    name: str
    description: str
    path: str  # the submodule it replaced, e.g. "context1.0"


def _replacement(module: nn.Module) -> tuple[nn.Module, str] | None:
    if isinstance(module, nn.AdaptiveAvgPool2d):
        size = _pair(module.output_size)
        if size == (1, 1):
            return ExactAdaptiveAvgPool2d(size), "global adaptive average pool -> ReduceMean"
        if 1 in size and None in size:
            return ExactAdaptiveAvgPool2d(size), f"axis pooling {size} -> ReduceMean over one axis"
        return ExactAdaptiveAvgPool2d(size), f"adaptive average pool to {size} -> exact bin-averaging MatMul"
    if isinstance(module, nn.MultiheadAttention) and _mha_is_plain(module):
        return ExportableMultiheadAttention(module), "multi-head attention -> shape-free reshapes (no baked length)"
    if isinstance(module, nn.AdaptiveMaxPool2d):
        if _pair(module.output_size) == (1, 1) and not module.return_indices:
            return GlobalMaxPool2d(), "global adaptive max pool -> ReduceMax (values only)"
        raise ExportRefused(
            f"AdaptiveMaxPool2d({module.output_size}) has no exact dynamic ONNX form that TensorRT accepts; "
            "export with --static or replace it with a fixed-kernel MaxPool2d"
        )
    return None


def apply_rewrites(model: nn.Module) -> tuple[nn.Module, list[Rewrite]]:
    """A deep copy of ``model`` with every known-unsafe module swapped, and the list of swaps."""
    model = copy.deepcopy(model)
    applied: list[Rewrite] = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            found = _replacement(child)
            if found is None:
                continue
            replacement, description = found
            setattr(parent, child_name, replacement)
            path = f"{parent_name}.{child_name}" if parent_name else child_name
            applied.append(Rewrite(type(replacement).__name__, description, path))
    return model, applied


@contextlib.contextmanager
def functional_pooling_swapped():
    """The module swap of adaptive pooling, for pooling called as a function: while the block runs,
    ``F.adaptive_avg_pool2d`` to a size other than 1 x 1 and ``F.interpolate(mode="area")`` to a size (the same op)
    are computed as ExactAdaptiveAvgPool2d does. smp's PSPNet, for one, calls the latter under torch.onnx's export.
    Yields the list of swaps made (a Rewrite per kind of call, in first-call order).

    Only the TorchScript trace runs under it; PyTorch's reference never does, so the export's parity checks hold the
    swap against the original op at every checked shape. The two functions are swapped on ``torch.nn.functional``
    itself rather than through a TorchFunctionMode: a mode would sit in the stack of every op, and a tracer warning
    must name the user's source line, not the mode's. (A name imported from it before, ``from torch.nn.functional
    import interpolate``, keeps the original: the export then refuses as before.)"""
    swaps: list[Rewrite] = []
    pool, interpolate = F.adaptive_avg_pool2d, F.interpolate

    def exact(name: str, x, size):
        rewrite = Rewrite("ExactAdaptiveAvgPool2d", f"{name} to {_pair(size)} -> exact bin-averaging MatMul",
                          f"a call of {name}")
        if rewrite not in swaps:
            swaps.append(rewrite)
        return ExactAdaptiveAvgPool2d(size)(x)

    def swappable(x, size) -> bool:
        return size is not None and torch.is_tensor(x) and x.dim() == 4 and _pair(size) != (1, 1)

    def adaptive_avg_pool2d(input, output_size):
        return exact("F.adaptive_avg_pool2d", input, output_size) if swappable(input, output_size) else \
            pool(input, output_size)

    def area_interpolate(*args, **kwargs):
        bound = inspect.signature(interpolate).bind(*args, **kwargs).arguments
        if bound.get("mode") == "area" and swappable(bound.get("input"), bound.get("size")):
            return exact('F.interpolate(mode="area")', bound["input"], bound["size"])
        return interpolate(*args, **kwargs)

    F.adaptive_avg_pool2d, F.interpolate = adaptive_avg_pool2d, area_interpolate
    try:
        yield swaps
    finally:
        F.adaptive_avg_pool2d, F.interpolate = pool, interpolate
