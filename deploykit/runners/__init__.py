"""Runners: PyTorch (the reference), onnxruntime, onnx's ReferenceEvaluator; TensorRT in deploykit.trt."""

from .base import Runner, TensorMeta

__all__ = ["Runner", "TensorMeta"]
