"""``deploykit serve``: artifacts behind the KServe v2 protocol over HTTP and gRPC, so Triton's own clients work unchanged.

    protocol.py       request parsing / response encoding (JSON and binary tensor data); the per-tensor checks
                      both protocols share
    body.py           body size limits, read timeout and Content-Encoding
    repository.py     the served models (runtime sessions), their metadata, the one infer path
    batching.py       dynamic batching along the batch axis
    metrics.py        Prometheus counters and histograms (GET /metrics)
    app.py            the Starlette routes, error mapping, concurrency limit, the inference thread pool
    http_protocol.py  uvicorn's h11 protocol with JSON 400/408 and a header read timeout
    grpc_server.py    the GRPCInferenceService on grpcio (tritonclient's compiled protos)
    server.py         uvicorn (+ gRPC) in the foreground (CLI) or a background thread (tests)
    options.py        ServeOptions: ``serve``'s settings as one value

The web stack (starlette, uvicorn, grpcio, prometheus-client) is imported only by the modules that
serve, so importing this package, like ``import deploykit``, needs none of it.
"""

from .options import ServeOptions
from .repository import ModelRepository

__all__ = ["ModelRepository", "ServeOptions", "create_app", "serve", "BackgroundServer"]


def __getattr__(name):  # lazy: the web stack loads only when it is used
    if name == "create_app":
        from .app import create_app  # function-level: the web stack (starlette) loads only when used

        return create_app
    if name in ("serve", "BackgroundServer"):
        from . import server  # function-level: the web stack (uvicorn) loads only when used

        return getattr(server, name)
    raise AttributeError(name)
