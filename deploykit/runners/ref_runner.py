"""onnx's ReferenceEvaluator: a slow, independent second opinion on small shapes."""

from __future__ import annotations

from pathlib import Path

from ..onnx_graph import tensor_specs
from .base import Runner


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

    def input_metadata(self):
        initializers = {i.name for i in self.proto.graph.initializer}
        return tensor_specs(self.proto.graph.input, skip=initializers)

    def infer_impl(self, feed):
        names = [o.name for o in self.proto.graph.output]
        return dict(zip(names, self.evaluator.run(None, feed)))

    def describe(self) -> dict:
        import onnx

        return {"runner": self.name, "onnx": onnx.__version__}
