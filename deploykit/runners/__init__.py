"""Runners with one interface (``with runner: runner.infer(feed) -> dict``): PyTorch (the reference),
onnxruntime, onnx's ReferenceEvaluator and TensorRT."""

from .base import Runner

__all__ = ["Runner"]
