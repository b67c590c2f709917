"""A feed (``{input name: numpy array}``) against the tensors a model declares: the one feed check.

Runners check names, dtypes, ranks and static sizes before a backend sees a feed; the runtime
(``deploykit.runtime``, the server) and calibration data also give the symbols' ranges, and then
every symbol must agree across inputs (FPN's C3 is 4*H where C5 is H) and lie in its range.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..errors import DeployKitError
from .shapes import DimExpr, resolve_shape


class FeedError(DeployKitError):
    """A feed that does not fit the model, in one line naming the input, the axis and the rule."""


def feed_symbols(feed, tensors, dims: dict | None = None, *, who: str = "", owner: str = "recipe") -> dict[str, int]:
    """Check ``feed`` against ``tensors`` (TensorSpecs); return the symbol values it implies.

    Without ``dims`` (DimSpecs by symbol) only names, array types, dtypes, ranks and static sizes are
    checked. With them, symbols are solved from every axis (``k*H`` and ``H/k`` inverted exactly),
    must agree between inputs, and must be allowed by their DimSpec (``owner`` names whose range).
    """
    prefix = f"{who}: " if who else ""

    def fail(message: str):
        raise FeedError(prefix + message)

    if not isinstance(feed, dict):
        fail(f"inputs must be a dict of name -> numpy array, got {type(feed).__name__}")
    names = [t.name for t in tensors]
    missing, extra = [n for n in names if n not in feed], [n for n in feed if n not in names]
    if missing or extra:
        fail(f"input names do not match the model: missing {missing or 'none'}, unexpected {extra or 'none'} "
             f"(expected {names})")
    values: dict[str, int] = {}
    source: dict[str, str] = {}
    for tensor in tensors:
        array = feed[tensor.name]
        if not isinstance(array, np.ndarray):
            fail(f"input {tensor.name!r} must be a numpy array, got {type(array).__name__}")
        if array.dtype != tensor.dtype:
            fail(f"input {tensor.name!r} has dtype {array.dtype}, expected {tensor.dtype} "
                 f"(convert with .astype(np.{tensor.dtype.name}))")
        if array.ndim != len(tensor.shape):
            fail(f"input {tensor.name!r} has rank {array.ndim} {tuple(array.shape)}, "
                 f"expected {len(tensor.shape)} {tensor.describe()}")
        wrong = [(axis, size, dim) for axis, (dim, size) in enumerate(zip(tensor.shape, array.shape))
                 if isinstance(dim, int) and size != dim]
        if wrong:  # every mismatched static axis of the input, in one line
            detail = "; ".join(f"axis {axis} is {size}, the model fixes it at {dim}" for axis, size, dim in wrong)
            fail(f"input {tensor.name!r} {detail} (static {'axes' if len(wrong) > 1 else 'axis'})")
        for axis, (dim, size) in enumerate(zip(tensor.shape, array.shape)):
            where = f"input {tensor.name!r} axis {axis}"
            if dims is None or not isinstance(dim, DimExpr):
                continue
            value = Fraction(size) / dim.scale  # invert k*SYM or SYM/k exactly; a remainder is an error
            if value.denominator != 1:
                fail(f"{where} is {size}, which is not {dim.text} for any whole {dim.symbol}")
            if dim.symbol in values and values[dim.symbol] != value:
                fail(f"{where} is {size}, so {dim.symbol}={int(value)}"
                     f"{'' if dim.text == dim.symbol else f' ({dim.text})'}, but {source[dim.symbol]} gives "
                     f"{dim.symbol}={values[dim.symbol]}: inputs must agree "
                     f"(shapes {', '.join(t.name + t.describe() for t in tensors)})")
            values[dim.symbol] = int(value)
            source[dim.symbol] = where
    if dims is None:
        return values
    for symbol, value in values.items():
        problem = dims[symbol].problem(value, owner) if symbol in dims else None
        if problem:
            fail(f"{symbol}={value} (from {source[symbol]}) {problem}")
    for tensor in tensors:  # belt and braces: every shape follows from the symbols
        expected = resolve_shape(tensor.shape, {**{n: d.value for n, d in dims.items() if d.is_static}, **values})
        if tuple(feed[tensor.name].shape) != expected:
            fail(f"input {tensor.name!r} has shape {tuple(feed[tensor.name].shape)}, expected {expected}")
    return values
