"""Graph changes that make model.onnx faster in onnxruntime and keep it the same function.

``optimize_for_ort(model, recipe)`` returns a new model and one note per change it made. Every pass
only rewires or folds standard ONNX ops, so the model stays loadable by TensorRT's ONNX parser; the
exporter re-runs its parity check on the result and keeps the unoptimized model if it differs.

Why hand-written: the exports carry runtime shape arithmetic that onnxsim, onnxslim and onnxscript's
optimizer leave in place because the dims are symbolic (onnxscript's ``optimize`` removed 1-4 nodes
of sdpa/msaf/mhsa/danet, these passes 12-65), and onnxruntime runs each of those scalar ops on every
call, a few µs apiece; and onnxruntime's Transpose kernel has no fast path for some permutations.
The passes (benchmarks/RESULTS.md has what each one measured):

* ``fold_reshape_shapes``: ``Reshape(x, Concat(Slice(Shape(x)), [4, 16]))`` -> ``Reshape(x, [0, 0, 4, 16])``.
  A target dim read from x's own dim at the same position becomes 0 ("copy", the default
  ``allowzero=0`` semantics); one remaining unknown dim becomes -1 (inferred from the element count,
  exact because the recipe's dims are >= 1, so no other dim is 0).
* ``fold_nonnegative_floor_division``: torch's ``div(a, b, rounding_mode="floor")`` exports as
  ``Where(And(Xor(Less(a, 0), Less(b, 0)), Mod(a, b) != 0), Div(a, b) - 1, Div(a, b))``; when a is
  provably >= 0 (it is built from Shape values and non-negative constants) and b is a positive
  constant, the condition is always false, so the result is ``Div(a, b)``.
* ``eliminate_common_subexpressions``: identical nodes on identical inputs are computed once.
* ``split_slow_transposes``: a Transpose between Reshapes that moves the innermost axis and others
  becomes two Transposes onnxruntime has fast kernels for (mdaf: 3 of them, ~480 -> ~110 µs each).
* then Identity removal and dead-node elimination.
Tried and dropped: fusing sibling Convs that read the same tensor into one Conv + Split (msfm 0.29 ->
0.32 ms: the Split breaks onnxruntime's NCHWc conv chain).
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import helper

from ..onnx_graph import OnnxGraph


def _attr(node, name, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


# -- Reshape shape folding -----------------------------------------------------------------------
# A 1-D int64 shape tensor is evaluated to a list of entries: ("dim", tensor, axis) when the value is
# that tensor's size on that axis, ("const", int), or ("?", None) when unknown. None: not a shape tensor we follow.

def _shape_entries(g: OnnxGraph, name: str, ranks: dict, depth: int = 0):
    if depth > 12:
        return None
    value = g.constant(name)
    if value is not None:
        if value.dtype.kind != "i" or value.ndim > 1:
            return None
        return [("const", int(v)) for v in np.atleast_1d(value)], value.ndim == 0
    node = g.producer.get(name)
    if node is None:
        return None
    op = node.op_type
    if op == "Shape":
        source = node.input[0]
        rank = ranks.get(source)
        if rank is None:
            return None
        start, end = _attr(node, "start", 0), _attr(node, "end", rank)
        axes = range(rank)[slice(start, end)]
        return [("dim", source, a) for a in axes], False
    if op in ("Cast", "Identity"):
        return _shape_entries(g, node.input[0], ranks, depth + 1)
    if op == "Concat" and _attr(node, "axis", 0) == 0:
        entries = []
        for part in node.input:
            got = _shape_entries(g, part, ranks, depth + 1)
            if got is None or got[1]:
                return None
            entries += got[0]
        return entries, False
    if op == "Slice":
        got = _shape_entries(g, node.input[0], ranks, depth + 1)
        params = [g.constant(n) if n else None for n in list(node.input[1:]) + [""] * (5 - len(node.input))]
        starts, ends, axes, steps = params[:4]
        if got is None or got[1] or starts is None or ends is None:
            return None
        if (axes is not None and list(np.atleast_1d(axes)) not in ([0], [-1])) or (
                steps is not None and list(np.atleast_1d(steps)) != [1]):
            return None
        entries = got[0]
        lo, hi = int(np.atleast_1d(starts)[0]), int(np.atleast_1d(ends)[0])
        n = len(entries)
        lo = max(0, lo + n) if lo < 0 else min(lo, n)
        hi = max(0, hi + n) if hi < 0 else min(hi, n)
        return entries[lo:hi], False
    if op == "Gather" and _attr(node, "axis", 0) == 0:
        got = _shape_entries(g, node.input[0], ranks, depth + 1)
        index = g.constant(node.input[1])
        if got is None or got[1] or index is None or index.ndim > 1:
            return None
        entries = got[0]
        picked = [entries[int(i)] for i in np.atleast_1d(index) if -len(entries) <= int(i) < len(entries)]
        if len(picked) != np.atleast_1d(index).size:
            return None
        return picked, index.ndim == 0
    if op == "Unsqueeze":
        got = _shape_entries(g, node.input[0], ranks, depth + 1)
        axes = g.constant(node.input[1]) if len(node.input) > 1 else np.array(_attr(node, "axes", []))
        if got is None or not got[1] or axes is None or list(np.atleast_1d(axes)) not in ([0], [-1]):
            return None
        return got[0], False
    if op == "Squeeze":
        got = _shape_entries(g, node.input[0], ranks, depth + 1)
        if got is None or got[1] or len(got[0]) != 1:
            return None
        return got[0], True
    return None


def fold_reshape_shapes(g: OnnxGraph, recipe=None) -> list[str]:
    ranks = g.ranks()
    notes = []
    for node in g.graph.node:
        if node.op_type != "Reshape" or _attr(node, "allowzero", 0) != 0 or g.constant(node.input[1]) is not None:
            continue
        got = _shape_entries(g, node.input[1], ranks)
        if got is None or got[1]:
            continue
        data = node.input[0]
        target = []
        for position, (kind, *rest) in enumerate(got[0]):
            if kind == "const":
                target.append(rest[0])
            elif kind == "dim" and rest[0] == data and rest[1] == position:
                target.append(0)
            else:
                target.append(-1)  # inferred from the element count: allowed once
        if target.count(-1) > 1:
            continue
        node.input[1] = g.add_initializer(np.array(target, dtype=np.int64), "shape")
        notes.append(f"Reshape {node.name or node.output[0]}: runtime shape -> constant {target}")
    return notes


# -- floor division on non-negative integers ----------------------------------------------------

def _lower_bound(g: OnnxGraph, name: str, memo: dict, depth: int = 0):
    """A lower bound of every element of an integer tensor, or None when unknown."""
    if name in memo:
        return memo[name]
    memo[name] = None  # cycles cannot happen in a valid graph; this also caps repeated work
    if depth > 40:
        return None
    value = g.constant(name)
    if value is not None:
        result = float(value.min()) if value.size and value.dtype.kind in "iuf" else None
        memo[name] = result
        return result
    node = g.producer.get(name)
    if node is None:
        return None
    op = node.op_type

    def lb(i):
        return _lower_bound(g, node.input[i], memo, depth + 1)

    result = None
    if op in ("Shape", "Size"):
        result = 0.0
    elif op in ("Gather", "Slice", "Unsqueeze", "Squeeze", "Reshape", "Identity", "Expand", "Flatten", "Transpose",
                "Cast"):
        result = lb(0)
    elif op == "Concat":
        bounds = [_lower_bound(g, n, memo, depth + 1) for n in node.input]
        result = None if any(b is None for b in bounds) else min(bounds)
    elif op == "Add":
        a, b = lb(0), lb(1)
        result = None if a is None or b is None else a + b
    elif op == "Sub":
        a, upper = lb(0), g.constant(node.input[1])
        result = None if a is None or upper is None or upper.dtype.kind not in "iuf" else a - float(upper.max())
    elif op == "Mul":
        a, b = lb(0), lb(1)
        result = a * b if a is not None and b is not None and a >= 0 and b >= 0 else None
    elif op == "Div":
        a, b = lb(0), lb(1)
        result = 0.0 if a is not None and b is not None and a >= 0 and b > 0 else None
    elif op in ("Max",):
        bounds = [_lower_bound(g, n, memo, depth + 1) for n in node.input]
        known = [b for b in bounds if b is not None]
        result = max(known) if known else None
    elif op == "Range":
        start, delta = lb(0), lb(2)
        result = start if start is not None and delta is not None and delta >= 0 else None
    memo[name] = result
    return result


def _is_false(g: OnnxGraph, name: str) -> bool:
    """A constant False, or Less(b, 0) with b a non-negative constant (the divisor's sign test)."""
    value = g.constant(name)
    if value is not None:
        return value.dtype == np.bool_ and not value.any()
    node = g.producer.get(name)
    if node is not None and node.op_type == "Less":
        b, zero = g.constant(node.input[0]), g.constant(node.input[1])
        return b is not None and zero is not None and bool((b >= 0).all()) and bool((zero <= 0).all())
    return False


def fold_nonnegative_floor_division(g: OnnxGraph, recipe=None) -> list[str]:
    memo: dict = {}
    notes = []
    for node in g.graph.node:
        if node.op_type != "Where" or len(node.input) != 3:
            continue
        condition, minus_one, quotient = (g.producer.get(n) for n in node.input)
        if not (condition and minus_one and quotient) or quotient.op_type != "Div":
            continue
        a, b = quotient.input
        divisor = g.constant(b)
        if divisor is None or divisor.dtype.kind != "i" or not (divisor > 0).all():
            continue
        one = g.constant(minus_one.input[1]) if minus_one.op_type == "Sub" and len(minus_one.input) == 2 else None
        if minus_one.input[0] != quotient.output[0] or one is None or one.size != 1:
            continue
        if condition.op_type != "And":
            continue
        sign_tests = [g.producer.get(n) for n in condition.input]
        xor = next((t for t in sign_tests if t is not None and t.op_type == "Xor"), None)
        if xor is None:
            continue
        less_a = next((g.producer.get(n) for n in xor.input
                       if g.producer.get(n) is not None and g.producer[n].op_type == "Less"
                       and g.producer[n].input[0] == a), None)
        other = [n for n in xor.input if less_a is None or n != less_a.output[0]]
        if less_a is None or len(other) != 1 or not _is_false(g, other[0]):
            continue
        zero = g.constant(less_a.input[1])
        bound = _lower_bound(g, a, memo)
        if zero is None or zero.size != 1 or bound is None or bound < float(zero.reshape(-1)[0]):
            continue
        # a >= 0 and b > 0: Less(a, 0) is false, so the Xor and the And are false, and Where takes Div(a, b)
        node.op_type = "Identity"
        del node.input[:]
        node.input.append(quotient.output[0])
        notes.append(f"floor division {node.name or node.output[0]}: non-negative operands -> plain Div")
    return notes


# -- common subexpressions, identities, dead nodes -----------------------------------------------

def eliminate_common_subexpressions(g: OnnxGraph, recipe=None) -> list[str]:
    seen: dict = {}
    rename: dict[str, str] = {}
    removed = 0
    for node in list(g.graph.node):
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
        if any(out in g.graph_outputs for out in node.output) or not node.output:
            continue
        attrs = tuple(sorted((a.name, a.SerializeToString()) for a in node.attribute))
        key = (node.domain, node.op_type, tuple(node.input), attrs, len(node.output))
        if node.op_type == "Constant":
            continue  # constants are cheap and folded by onnxruntime; keeping them keeps names stable
        if key in seen:
            for old, new in zip(node.output, seen[key].output):
                rename[old] = new
            g.graph.node.remove(node)
            removed += 1
        else:
            seen[key] = node
    for out in g.graph.output:
        if out.name in rename:  # never renames graph outputs (skipped above); kept for safety
            raise RuntimeError("CSE tried to rename a graph output")
    g.refresh()
    return [f"computed {removed} duplicate node(s) once"] if removed else []


def remove_identities(g: OnnxGraph) -> int:
    rename = {}
    removed = 0
    for node in list(g.graph.node):
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
        if node.op_type == "Identity" and node.output[0] not in g.graph_outputs:
            rename[node.output[0]] = node.input[0]
            g.graph.node.remove(node)
            removed += 1
    g.refresh()
    return removed


def eliminate_dead_nodes(g: OnnxGraph) -> int:
    needed = set(g.graph_outputs)
    keep = []
    for node in reversed(list(g.graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(n for n in node.input if n)
    removed = len(g.graph.node) - len(keep)
    del g.graph.node[:]
    g.graph.node.extend(reversed(keep))
    unused = [i for i in g.graph.initializer if i.name not in needed]
    for init in unused:
        g.graph.initializer.remove(init)
    names = {i.name for i in g.graph.initializer}
    stale = [v for v in g.graph.input if v.name not in needed and v.name in names]
    for value in stale:
        g.graph.input.remove(value)
    g.refresh()
    return removed


# -- Transposes onnxruntime has no fast kernel for ----------------------------------------------

def _moves_one_axis(perm: list[int]) -> bool:
    """True when ``perm`` is the identity with one axis moved elsewhere (onnxruntime's fast case)."""
    for axis in range(len(perm)):
        others = [i for i in range(len(perm)) if i != axis]
        if any(others[:j] + [axis] + others[j:] == perm for j in range(len(perm))):
            return True
    return False


def split_slow_transposes(g: OnnxGraph, recipe=None) -> list[str]:
    """A Transpose that moves the innermost axis and others too -> two fast Transposes.

    onnxruntime copies element by element unless a Transpose moves one axis or keeps the innermost
    axis in place (then it copies whole rows). ``perm`` is split into (1) moving ``perm[-1]`` to the
    end, one axis, then (2) the rest, which keeps the innermost axis: same data, moved twice. A no-op
    ``Reshape(x, [0, ..., 0])`` between them stops onnxruntime's transpose optimizer from merging
    them back (measured: (2,4,16,32,32) by (0,1,4,3,2): 454 µs as one, 106 µs as two).
    Only between Reshapes (a head split or merge): elsewhere onnxruntime's transpose optimizer may
    push the Transpose onto a smaller tensor or cancel it, which the barrier would prevent (measured
    on triplet: 0.50 -> 0.60 ms).
    """
    notes = []
    for node in list(g.graph.node):
        if node.op_type != "Transpose":
            continue
        perm = list(_attr(node, "perm", []))
        rank = len(perm)
        if rank < 3 or perm[-1] == rank - 1 or _moves_one_axis(perm):
            continue
        producer, consumers = g.producer.get(node.input[0]), g.consumers.get(node.output[0], [])
        if producer is None or producer.op_type != "Reshape" or not consumers or any(
                c.op_type not in ("Reshape", "Shape") for c in consumers) or node.output[0] in g.graph_outputs:
            continue
        first = [i for i in range(rank) if i != perm[-1]] + [perm[-1]]
        second = [first.index(axis) for axis in perm]
        moved, barrier = f"{node.output[0]}_dk_move", f"{node.output[0]}_dk_keep"
        zeros = g.add_initializer(np.zeros(rank, dtype=np.int64), "keep_shape")
        position = list(g.graph.node).index(node)
        replacement = [
            helper.make_node("Transpose", [node.input[0]], [moved], perm=first, name=f"{node.name}_dk_move"),
            helper.make_node("Reshape", [moved, zeros], [barrier], name=f"{node.name}_dk_keep"),
            helper.make_node("Transpose", [barrier], [node.output[0]], perm=second, name=f"{node.name}_dk_rest"),
        ]
        g.graph.node.remove(node)
        for offset, new_node in enumerate(replacement):
            g.graph.node.insert(position + offset, new_node)
        notes.append(f"Transpose {node.name or node.output[0]} {perm} -> {first} then {second}")
    g.refresh()
    return notes


def optimize_for_ort(model: onnx.ModelProto, recipe=None) -> tuple[onnx.ModelProto, list[str]]:
    """A faster, equivalent copy of ``model`` and one note per change (an empty list: nothing to do)."""
    if recipe is not None and any(not d.is_static and d.min < 1 for d in recipe.dims.values()):
        return model, []  # the -1 reshape inference assumes no dim can be 0
    optimized = copy.deepcopy(model)
    g = OnnxGraph(optimized)
    before = len(g.graph.node)
    notes = eliminate_common_subexpressions(g)
    notes += fold_reshape_shapes(g)
    notes += fold_nonnegative_floor_division(g)
    remove_identities(g)
    eliminate_dead_nodes(g)
    notes += split_slow_transposes(g)
    eliminate_dead_nodes(g)
    if not notes:
        return model, []
    onnx.checker.check_model(optimized, full_check=True)
    notes.append(f"nodes {before} -> {len(g.graph.node)}")
    return optimized, notes
