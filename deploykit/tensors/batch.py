"""The one batch-axis rule, shared by the server's dynamic batcher (serve/batching.py) and Triton packaging
(package/triton.py), so both batch exactly the models Triton would.

Batching is only offered when Triton's batch convention holds: the same symbol, unscaled, is axis 0 of every
input and output and appears nowhere else, with min 1 and step 1 (Triton may send any batch from 1 up).
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import DimSpec, TensorSpec


@dataclass(frozen=True)
class BatchAxis:
    symbol: str | None  # None: Triton cannot batch this model
    limit: int  # the largest max_batch_size allowed (0 when not batchable)
    reason: str  # why (not) batchable, for messages


def batch_axis(inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...],
               ranges: dict[str, DimSpec]) -> BatchAxis:
    tensors = inputs + outputs
    first = tensors[0].shape[0] if tensors[0].shape else None
    if first is None or isinstance(first, int):
        return BatchAxis(None, 0, f"axis 0 of {tensors[0].name!r} is static")
    symbol = first.symbol
    for t in tensors:
        head = t.shape[0] if t.shape else None
        if isinstance(head, int) or head is None or head.symbol != symbol or head.scale != 1:
            return BatchAxis(None, 0, f"axis 0 of {t.name!r} is not {symbol}")
        if any(not isinstance(d, int) and d.symbol == symbol for d in t.shape[1:]):
            return BatchAxis(None, 0, f"{symbol} also sizes a non-batch axis of {t.name!r}")
    spec = ranges[symbol]
    if spec.is_static:
        return BatchAxis(None, 0, f"{symbol} is fixed at {spec.min} ({spec.reason})")
    if spec.min != 1 or spec.multiple_of != 1:
        return BatchAxis(None, 0, f"{symbol} must accept every batch from 1 (its range is [{spec.min}, {spec.max}] "
                                  f"step {spec.multiple_of})")
    return BatchAxis(symbol, spec.max, f"{symbol} is axis 0 of every input and output, range [1, {spec.max}]")
