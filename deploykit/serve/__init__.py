"""``deploykit serve``: artifacts behind the KServe v2 HTTP protocol, so Triton's own clients work unchanged.

    protocol.py    request parsing / response encoding (JSON and binary tensor data)
    body.py        body size limits and Content-Encoding
    repository.py  the served models (runtime sessions) and their metadata
    app.py         the Starlette routes, error mapping, the inference thread pool
    server.py      uvicorn in the foreground (CLI) or a background thread (tests)

The web stack (starlette, uvicorn) is imported only by app.py and server.py, so importing this
package, like ``import deploykit``, needs neither.
"""

from .repository import ModelRepository

__all__ = ["ModelRepository", "create_app", "serve", "BackgroundServer"]


def __getattr__(name):  # lazy: the web stack loads only when it is used
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("serve", "BackgroundServer"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
