"""onnx's ReferenceEvaluator: a slow, independent second opinion on small shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Runner, TensorMeta

_ONNX_TO_NUMPY = {1: np.float32, 10: np.float16, 11: np.float64, 7: np.int64, 6: np.int32, 3: np.int8, 2: np.uint8}


class ReferenceRunner(Runner):
    name = "ref"

    def __init__(self, model: str | Path):
        super().__init__()
        self.model_path = model
        self.evaluator = None
        self.proto = None

    def activate(self) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        self.proto = onnx.load(str(self.model_path))
        self.evaluator = ReferenceEvaluator(self.proto)

    def input_metadata(self) -> list[TensorMeta]:
        initializers = {i.name for i in self.proto.graph.initializer}
        metas = []
        for value in self.proto.graph.input:
            if value.name in initializers:
                continue
            tensor_type = value.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim)
            metas.append(TensorMeta(value.name, np.dtype(_ONNX_TO_NUMPY.get(tensor_type.elem_type, np.float32)), dims))
        return metas

    def infer_impl(self, feed):
        names = [o.name for o in self.proto.graph.output]
        return dict(zip(names, self.evaluator.run(None, feed)))

    def describe(self) -> dict:
        import onnx

        return {"runner": self.name, "onnx": onnx.__version__}
