"""deploykit: take PyTorch vision modules to production (ONNX, onnxruntime, TensorRT).

    import deploykit
    deploykit.export(model, {"x": "B,3,H,W"}, {"B": "1:2:8", "H": "64:224:512/32", "W": "64:224:512/32"})
    deploykit.verify("mymodel")

``export`` and ``verify`` (deploykit/api.py) are imported on first use: ``import deploykit`` stays light
(they are also the packages deploykit.export and deploykit.verify, made callable: callable_module.py).
"""

__version__ = "0.1.0"

from .errors import DeployKitError  # noqa: E402

__all__ = ["DeployKitError", "__version__", "export", "verify"]


def __getattr__(name):
    if name in ("export", "verify"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'deploykit' has no attribute {name!r}")
