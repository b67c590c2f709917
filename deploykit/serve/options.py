"""``ServeOptions``: how ``serve`` runs (``deploykit serve``'s flags), as one frozen value: where it listens, on which
backend, its limits (body sizes, timeouts, concurrency) and dynamic batching."""

from __future__ import annotations

from dataclasses import dataclass

from .batching import DEFAULT_MAX_DELAY_MS
from .body import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_BYTES, DEFAULT_READ_TIMEOUT_S


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = 8001  # None: HTTP only
    backend: str = "auto"  # a row of the backend table with the serve column, or auto (its automatic order)
    workers: int | None = None  # inference threads (None: the app's default)
    log_level: str = "info"
    graceful_seconds: int = 30  # in-flight requests finish within this on SIGINT/SIGTERM
    # limits: the memory request bodies can hold at once is max_concurrency x max_body_bytes
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_concurrency: int = 64
    max_client_concurrency: int | None = None  # per client address (None: no per-client limit)
    read_timeout: float = DEFAULT_READ_TIMEOUT_S
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S
    # dynamic batching along the batch axis
    batching: bool = True
    max_batch: int | None = None
    max_delay_ms: float = DEFAULT_MAX_DELAY_MS

    def app_limits(self) -> dict:
        """The keyword arguments of ``create_app`` these options set (besides the repository and metrics)."""
        return dict(max_body_bytes=self.max_body_bytes, workers=self.workers, max_concurrency=self.max_concurrency,
                    read_timeout=self.read_timeout, body_timeout=self.body_timeout,
                    max_client_concurrency=self.max_client_concurrency, max_json_bytes=self.max_json_bytes)
