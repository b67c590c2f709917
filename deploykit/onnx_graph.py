"""The one ONNX graph helper: loading with one-line errors, dims and dtypes of value infos, the opset,
and ``OnnxGraph`` lookups (producers, consumers, constants, inferred dtypes and dims) that the export
optimizer, the TensorRT compatibility checks and the runners share.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from .errors import DeployKitError, first_line
from .tensors.shapes import parse_dim
from .tensors.spec import TensorSpec


def load_model(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    """A ModelProto as is, or the file loaded (without external data), or a one-line DeployKitError."""
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / OSError
        raise DeployKitError(f"{model}: not a readable ONNX model ({first_line(exc)})") from None


def dims_of(value_info: onnx.ValueInfoProto) -> list:
    """Axis sizes: ints for fixed axes, the symbol's name for named ones, None for unnamed ones."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def numpy_dtype(elem_type: int) -> np.dtype:
    """numpy dtype of an ONNX TensorProto element type (onnx's own table)."""
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def numpy_dtype_of_type_string(text: str) -> np.dtype:
    """``"tensor(float16)"`` (onnxruntime's NodeArg.type, ONNX's type string) -> float16."""
    inner = text[len("tensor("):-1] if text.startswith("tensor(") else text
    return numpy_dtype(TensorProto.DataType.Value(inner.upper()))


def opset_of(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def axis_of(size):
    """An ONNX (or onnxruntime) axis as a TensorSpec axis: an int, a DimExpr for ``H`` / ``4*H``, else None."""
    if isinstance(size, int) or not size:
        return size or None
    try:
        return parse_dim(size)
    except ValueError:  # an exporter's name such as "floor(H/2)": dynamic, but not a recipe expression
        return None


def tensor_specs(values, skip: set[str] = frozenset()) -> list[TensorSpec]:
    """TensorSpecs for graph inputs/outputs."""
    return [TensorSpec(v.name, tuple(axis_of(d) for d in dims_of(v)), dtype=numpy_dtype(v.type.tensor_type.elem_type))
            for v in values if v.name not in skip]


def subgraphs(graph: onnx.GraphProto):
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from subgraphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from subgraphs(g)


def constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node (tensor, int or ints forms), else None."""
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
    return None


class OnnxGraph:
    """Lookups over a model's main graph: producers, consumers, constants (initializers and Constant
    nodes, subgraphs included), and dtypes/dims from onnx's shape inference (computed on first use).

    The export optimizer edits ``graph`` in place and calls ``refresh()``; the checks only read.
    """

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self.refresh()

    def refresh(self) -> None:
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.graph.node:
            for out in node.output:
                self.producer[out] = node
            for name in node.input:
                if name:
                    self.consumers[name].append(node)
        self.initializers = {i.name: i for i in self.graph.initializer}
        self._value_infos = None  # re-inferred on next use: the graph may have changed
        self.graph_outputs = {o.name for o in self.graph.output}
        self._constants: dict[str, np.ndarray | TensorProto] = {}
        for graph in subgraphs(self.graph):
            for init in graph.initializer:
                self._constants[init.name] = init
            for node in graph.node:
                if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                    self._constants[node.output[0]] = node

    def constant(self, name: str) -> np.ndarray | None:
        found = self._constants.get(name)
        if found is None:
            return None
        return numpy_helper.to_array(found) if isinstance(found, TensorProto) else constant_value(found)

    @property
    def value_infos(self) -> dict[str, onnx.ValueInfoProto]:
        if self._value_infos is None:
            try:  # shape inference gives ranks/dtypes of intermediate tensors; best effort only
                inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=False)
            except Exception:  # onnx raises InferenceError and others on models it cannot follow
                inferred = self.model
            self._value_infos = {vi.name: vi for graph in subgraphs(inferred.graph)
                                 for vi in (*graph.input, *graph.value_info, *graph.output)}
        return self._value_infos

    def elem_type(self, name: str) -> int | None:
        found = self._constants.get(name)
        if isinstance(found, TensorProto):
            return found.data_type
        if found is not None:
            value = self.constant(name)
            return onnx.helper.np_dtype_to_tensor_dtype(value.dtype) if value is not None else None
        vi = self.value_infos.get(name)
        if vi is not None and vi.type.HasField("tensor_type"):
            return vi.type.tensor_type.elem_type or None
        return None

    def dims(self, name: str) -> list | None:
        found = self._constants.get(name)
        if found is not None:
            value = self.constant(name)
            return list(value.shape) if value is not None else None
        vi = self.value_infos.get(name)
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            return None
        return dims_of(vi)

    def ranks(self) -> dict[str, int]:
        """Rank of every tensor shape inference can tell (symbolic dims are fine: ranks are what counts)."""
        ranks = {name: len(vi.type.tensor_type.shape.dim) for name, vi in self.value_infos.items()
                 if vi.type.tensor_type.HasField("shape")}
        ranks.update({init.name: len(init.dims) for init in self.graph.initializer})
        return ranks

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        base, name, i = f"dk_opt_{hint}", f"dk_opt_{hint}", 0
        while name in self.initializers or name in self.producer:
            i += 1
            name = f"{base}_{i}"
        tensor = numpy_helper.from_array(array, name)
        self.graph.initializer.append(tensor)
        self.initializers[name] = tensor
        self._constants[name] = tensor
        return name
