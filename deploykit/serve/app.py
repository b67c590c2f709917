"""The HTTP application: KServe v2 routes on Starlette (the ASGI toolkit FastAPI is built on).

Starlette rather than FastAPI: the infer route reads raw bytes (the binary tensor extension is not
JSON), so FastAPI's request models would add a dependency and nothing else.

The event loop only reads bodies and writes responses. Decoding, inference and encoding run in a
bounded thread pool (onnxruntime's run() is thread-safe and releases the GIL), so a slow request
never stalls health checks or other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..version import __version__
from .body import (DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_BYTES, DEFAULT_READ_TIMEOUT_S,
                   check_json_size, decode_body, encode_body, is_number, read_body)
from .metrics import ServerMetrics
from .protocol import HEADER_LENGTH, RequestError, encode_infer_response, parse_infer_request
from .repository import VERSION, ModelRepository

log = logging.getLogger("deploykit.serve")
EXTENSIONS = ["binary_tensor_data"]
DEFAULT_MAX_CONCURRENCY = 64


def _error(status: int, message: str) -> JSONResponse:
    # 413: the unread body is not worth reading; 408: the rest of the body is not coming
    headers = {"Connection": "close"} if status in (408, 413) else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` requests in flight, and at most ``per_client`` from one client
    address; a JSON 503 beyond (uvicorn's is plain text), counted in /metrics.

    This bounds what request bodies can hold at once (limit x max body bytes), and one client (64 slow
    connections sending a body byte every few seconds) cannot take every slot from the others. Metrics,
    health and readiness probes are exempt: an orchestrator must see a busy server as alive, not as dead.
    """

    EXEMPT = ("/metrics", "/v2/health/live", "/v2/health/ready")

    def __init__(self, app, limit: int | None, per_client: int | None = None, metrics: ServerMetrics | None = None):
        self.app = app
        self.limit = limit
        self.per_client = per_client
        self.metrics = metrics
        self.active = 0
        self.clients: dict[str, int] = {}

    def _refusal(self, client: str):
        if self.limit is not None and self.active >= self.limit:
            return "server", (f"the server has {self.active} requests in flight, its limit "
                              "(deploykit serve --max-concurrency); retry later")
        if self.per_client is not None and self.clients.get(client, 0) >= self.per_client:
            return "client", (f"this client address has {self.clients[client]} requests in flight, the limit per "
                              "client (deploykit serve --max-client-concurrency, within --max-concurrency); "
                              "retry later")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?",))[0]
        refusal = self._refusal(client)
        if refusal is not None:
            if self.metrics is not None:
                self.metrics.rejected.labels("http", refusal[0]).inc()
            response = _error(503, refusal[1])
            response.headers["Retry-After"] = "1"
            response.headers["Connection"] = "close"
            return await response(scope, receive, send)
        self.active += 1
        self.clients[client] = self.clients.get(client, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.clients[client] -= 1
            if not self.clients[client]:
                del self.clients[client]  # the table holds only clients with requests in flight


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return _error(exc.status, str(exc))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    routes = "/v2, /v2/health/{live,ready}, /v2/models/NAME[/ready|/infer], /metrics"
    message = {404: f"no route {request.url.path} (KServe v2: {routes})",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    return _error(exc.status_code, message)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s", request.url.path)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def _infer_sync(model, body: bytes, header_length: int | None, headers, limit: int, arrival,
                json_limit: int | None = DEFAULT_MAX_JSON_BYTES) -> Response:
    """Everything CPU-bound about one request, run in the worker pool."""
    body = decode_body(body, headers.get("content-encoding"), limit)
    check_json_size(len(body) if header_length is None else header_length, json_limit,
                    "the request body" if header_length is None else "the inference header")
    request = parse_infer_request(body, header_length, {t.name: t.dtype for t in model.session.inputs})
    results = model.infer(request, arrival)
    content, json_length = encode_infer_response(model.name, VERSION, request, results)
    content, coding = encode_body(content, headers.get("accept-encoding"))
    response_headers = {"Content-Encoding": coding} if coding else {}
    if json_length is None:
        return Response(content, media_type="application/json", headers=response_headers)
    response_headers[HEADER_LENGTH] = str(json_length)
    return Response(content, media_type="application/octet-stream", headers=response_headers)


def create_app(repository: ModelRepository, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               workers: int | None = None, metrics: ServerMetrics | None = None,
               max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
               read_timeout: float | None = DEFAULT_READ_TIMEOUT_S, body_timeout: float | None = DEFAULT_BODY_TIMEOUT_S,
               max_client_concurrency: int | None = None,
               max_json_bytes: int | None = DEFAULT_MAX_JSON_BYTES) -> Starlette:
    """A KServe v2 app serving every model in ``repository`` (which the caller opens and closes).

    ``metrics`` (a ServerMetrics, shared with the gRPC server) is exposed at /metrics; the app makes
    its own when none is given. ``max_client_concurrency`` limits requests in flight per client address
    (None: only the server's limit; the CLI defaults to half of ``max_concurrency``).
    """
    batching = any(m.batcher is not None for m in repository.models.values())
    # with a batcher a worker mostly waits for its batch, so the pool must hold every request in flight
    # for batches to fill; without one, each worker runs the model and more workers only split the cores
    workers = workers or ((max_concurrency or 64) if batching else min(8, os.cpu_count() or 1))
    metrics = metrics or ServerMetrics()
    state = {"ready": False, "pool": None}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["pool"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploykit-infer")
        state["ready"] = True
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished (or, past its graceful timeout, cancelled) the
            # in-flight requests: drop work nobody waits for, let running inferences end.
            state["ready"] = False
            state["pool"].shutdown(wait=True, cancel_futures=True)

    async def server_metadata(request):
        return JSONResponse({"name": "deploykit", "version": __version__, "extensions": EXTENSIONS})

    async def live(request):
        return JSONResponse({"live": True})

    async def ready(request):
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    async def model_metadata(request):
        params = request.path_params
        return JSONResponse(repository.get(params["name"], params.get("version")).metadata())

    async def model_ready(request):
        params = request.path_params
        model = repository.get(params["name"], params.get("version"))
        return JSONResponse({"name": model.name, "ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    async def infer(request):
        params = request.path_params
        known = repository.models.get(params["name"])
        counted = metrics.request(known.name, "http") if known is not None else contextlib.nullcontext()
        arriving = known.arriving() if known is not None else contextlib.nullcontext()
        with counted, arriving as arrival:
            # the body first, even for errors found without it: a client still sending when the reply and
            # the close arrive gets a connection reset instead of the message
            body = await read_body(request, max_body_bytes, read_timeout, body_timeout)
            model = repository.get(params["name"], params.get("version"))
            header_length = request.headers.get(HEADER_LENGTH.lower())
            if header_length is not None:
                if not is_number(header_length):
                    raise RequestError(f"{HEADER_LENGTH} {header_length!r} is not a number")
                header_length = int(header_length)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                state["pool"], partial(_infer_sync, model, body, header_length, request.headers, max_body_bytes,
                                       arrival if model is known else None, max_json_bytes))

    async def metrics_text(request):
        return Response(metrics.render(), media_type=metrics.content_type)

    routes = [
        Route("/v2", server_metadata),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2/models/{name}", model_metadata),
        Route("/v2/models/{name}/versions/{version}", model_metadata),
        Route("/v2/models/{name}/ready", model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/metrics", metrics_text),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(ConcurrencyLimit, limit=max_concurrency, per_client=max_client_concurrency,
                               metrics=metrics)],
        exception_handlers={RequestError: _request_error, HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.metrics = metrics
    app.state.read_timeout = read_timeout  # the server's header timeout (serve.http_protocol) uses the same
    return app
