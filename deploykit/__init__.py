"""deploykit: take PyTorch vision modules to production (ONNX, onnxruntime, TensorRT)."""

__version__ = "0.1.0"

from .errors import DeployKitError  # noqa: E402

__all__ = ["DeployKitError", "__version__"]
