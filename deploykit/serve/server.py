"""Running the app with uvicorn: in the foreground (the CLI) or in a background thread (tests, notebooks).

uvicorn owns the clean shutdown: on SIGINT/SIGTERM (or ``should_exit``) it stops accepting, lets
in-flight requests finish (up to ``graceful_seconds``), then runs the app's lifespan exit, which
drains the inference pool; the caller then closes the model sessions.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

from ..errors import DeployKitError
from .app import create_app
from .body import DEFAULT_READ_TIMEOUT_S
from .http_protocol import protocol_class
from .metrics import ServerMetrics
from .options import ServeOptions
from .repository import ModelRepository


def _config(app, host: str, port: int, log_level: str, graceful_seconds: int):
    import uvicorn

    # Requests in flight are limited by the app (JSON 503, serve.app.ConcurrencyLimit), which bounds the
    # memory request bodies can hold at once: max_concurrency x max_body_bytes. The protocol class
    # answers malformed requests in JSON and times out requests whose headers never finish.
    read_timeout = getattr(app.state, "read_timeout", DEFAULT_READ_TIMEOUT_S) or DEFAULT_READ_TIMEOUT_S
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                          timeout_graceful_shutdown=graceful_seconds, server_header=False,
                          http=protocol_class(read_timeout))


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is one clear error (uvicorn would log it and sys.exit)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DeployKitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(artifact_dirs: list[str | Path], options: ServeOptions | None = None, *, on_loaded=None) -> None:
    """Serve the artifacts over HTTP (and gRPC unless ``options.grpc_port`` is None) until SIGINT/SIGTERM.

    Every artifact must load, and both ports must bind, before either opens.
    """
    import uvicorn

    o = options or ServeOptions()
    host, port, workers, max_concurrency = o.host, o.port, o.workers, o.max_concurrency
    with ModelRepository.load(artifact_dirs, o.backend) as repository:
        metrics = ServerMetrics()
        notes = repository.enable(metrics=metrics, batching=o.batching, max_batch=o.max_batch,
                                  max_delay_ms=o.max_delay_ms)
        app = create_app(repository, metrics=metrics, **o.app_limits())
        sock = bind_socket(host, port)
        grpc_server = None
        try:
            if o.grpc_port is not None:
                from .grpc_server import GrpcServer  # function-level: grpc (the `grpc` extra), only with --grpc-port

                grpc_server = GrpcServer(repository, metrics, host=host, port=o.grpc_port,
                                         workers=workers or min(8, os.cpu_count() or 1),
                                         max_concurrency=max_concurrency, max_message_bytes=o.max_body_bytes,
                                         max_client_concurrency=o.max_client_concurrency)
            if on_loaded:
                on_loaded(repository, sock.getsockname()[1], grpc_server.port if grpc_server else None, notes)
            if grpc_server is not None:
                grpc_server.start()
            uvicorn.Server(_config(app, host, port, o.log_level, o.graceful_seconds)).run(sockets=[sock])
        finally:
            # uvicorn has drained HTTP; gRPC gets the same grace, then the batchers and sessions close
            if grpc_server is not None:
                grpc_server.stop(o.graceful_seconds)
            sock.close()


class BackgroundServer:
    """The app on a loopback port in a daemon thread: ``with BackgroundServer(app) as s: s.url``.

    Port 0 picks a free port; the socket is bound here, before the thread starts, so there is no
    window in which another process can take it.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 graceful_seconds: int = 10):
        import uvicorn

        self.host = host
        self.socket = bind_socket(host, port)
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(_config(app, host, self.port, log_level, graceful_seconds))
        self.thread = threading.Thread(target=self._run, name="deploykit-serve", daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self.socket]))
        except BaseException as exc:  # reported by start()/stop() in the caller's thread
            self.error = exc

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise DeployKitError(f"the server thread exited during startup: {self.error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise DeployKitError(f"the server did not start within {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.socket.close()
        if self.thread.is_alive():
            raise DeployKitError(f"the server did not stop within {timeout:.0f} s")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
