"""deploykit: take PyTorch vision modules to production (ONNX, onnxruntime, TensorRT).

    import deploykit
    deploykit.export(model, {"x": "B,3,H,W"}, {"B": "1:2:8", "H": "64:224:512/32", "W": "64:224:512/32"})
    deploykit.verify("mymodel")

``export`` and ``verify`` (deploykit/api.py) are imported on first use: ``import deploykit`` stays light
(they are also the packages deploykit.export and deploykit.verify, made callable: callable_module.py).
"""

from .errors import DeployKitError
from .version import __version__

__all__ = ["DeployKitError", "__version__", "export", "verify"]


def api_function(name: str):
    """deploykit.api's function ``name``, imported on first use (callable_module.py: how ``deploykit.export(...)``
    and ``deploykit.verify(...)`` reach it). The root package is the top layer: it may import api."""
    from . import api  # function-level: api imports torch, and `import deploykit` must stay light

    return getattr(api, name)


def __getattr__(name):
    if name in ("export", "verify"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'deploykit' has no attribute {name!r}")
