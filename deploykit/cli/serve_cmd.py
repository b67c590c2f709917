"""deploykit serve: artifacts behind a KServe v2 HTTP + gRPC server (the protocol Triton speaks)."""

from __future__ import annotations

import ipaddress
import signal
from pathlib import Path

import click

from ..errors import DeployKitError
from ..backends import AUTO_ORDER
from .common import backend_option, console


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.argument("artifact_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback exposes the models (no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="HTTP port (KServe v2 REST and /metrics); 0 picks a free port.")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=8001, show_default=True,
              help="KServe v2 gRPC port (what tritonclient.grpc speaks); 0 picks a free port.")
@click.option("--no-grpc", is_flag=True, help="Serve HTTP only.")
@click.option("--batching/--no-batching", default=True, show_default=True,
              help="Dynamic batching: concurrent requests of equal non-batch dims run as one batch.")
@click.option("--max-batch", type=click.IntRange(1), default=None,
              help="Largest batch the batcher forms (default: the artifact's batch max).")
@click.option("--max-delay-ms", type=click.FloatRange(0, 1000), default=2.0, show_default=True,
              help="How long the oldest queued request waits for others to join its batch.")
@backend_option("serve", "auto",
                f"auto tries {', '.join(AUTO_ORDER)} in that order (a TensorRT engine only when its sidecar matches "
                "this machine; onnxruntime CUDA only when it really runs on CUDA).")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Inference threads (default: min(8, CPU count)).")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=64.0, show_default=True,
              help="Largest request body accepted (after decompression); bigger ones get 413.")
@click.option("--max-concurrency", type=click.IntRange(1), default=64, show_default=True,
              help="Requests in flight (per protocol); beyond it HTTP answers 503, gRPC RESOURCE_EXHAUSTED.")
@click.option("--read-timeout", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
              help="Seconds without a byte of a request's headers or body before the server answers 408 and closes.")
@click.option("--body-timeout", type=click.FloatRange(min=0.05), default=60.0, show_default=True,
              help="Seconds for a request's whole body to arrive, however it trickles in; then 408.")
@click.option("--max-client-concurrency", type=click.IntRange(1), default=None,
              help="Requests in flight from one client address, HTTP and gRPC each (default: half of --max-concurrency); "
                   "beyond it 503 (RESOURCE_EXHAUSTED over gRPC), so one client cannot hold every slot.")
@click.option("--max-json-mb", type=click.FloatRange(min=0.001), default=16.0, show_default=True,
              help="Largest JSON text per request (JSON costs ~11x its size to parse); send bigger tensors "
                   "as binary data. Bigger ones get 413.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
def command(artifact_dirs, host, port, grpc_port, no_grpc, batching, max_batch, max_delay_ms, backend, workers,
            max_body_mb, max_concurrency, read_timeout, body_timeout, max_client_concurrency, max_json_mb, log_level):
    """Serve artifacts over HTTP and gRPC with the KServe v2 inference protocol.

    \b
    Triton's clients (tritonclient.http and tritonclient.grpc) work
    unchanged: server/model metadata and readiness, infer with JSON or
    binary tensors (HTTP) or raw tensor contents (gRPC). Inputs are
    checked against each artifact's declared shapes and ranges (400 /
    INVALID_ARGUMENT with the reason). Prometheus metrics at /metrics.
    Ctrl-C stops accepting, finishes in-flight requests, exits.

    \b
    Examples:
      deploykit serve artifacts/cbam
      deploykit serve artifacts/cbam artifacts/fpn --port 8080 --grpc-port 8081 --backend ort-cpu
      deploykit serve artifacts/composite --no-batching
    \b
      # then, in Python (pip install 'deploykit[serve]' installs the client):
      import numpy as np, tritonclient.http as http
      client = http.InferenceServerClient("127.0.0.1:8000")
      x = http.InferInput("x", [1, 64, 32, 32], "FP32")
      x.set_data_from_numpy(np.random.rand(1, 64, 32, 32).astype(np.float32))
      y = client.infer("cbam", [x]).as_numpy("y")
    """
    if not artifact_dirs:
        raise DeployKitError("name at least one artifact folder to serve, e.g. `deploykit serve artifacts/cbam`")
    try:
        import prometheus_client  # noqa: F401  (checked here for a one-line error instead of a traceback)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        if not no_grpc:
            import grpc  # noqa: F401
            import tritonclient.grpc  # noqa: F401

        from .. import serve as serving
        from ..serve.server import serve
    except ModuleNotFoundError as exc:
        raise DeployKitError(f"deploykit serve needs {exc.name}: pip install 'deploykit[serve]'") from None
    out = console(stderr=True)
    if not _is_loopback(host):
        out.print(f"[yellow]serving on {host}: reachable from the network, with no authentication[/yellow]")

    def on_loaded(repository: serving.ModelRepository, bound_port: int, bound_grpc: int | None, notes: dict):
        from rich.table import Table

        title = f"deploykit serve on http://{host}:{bound_port}" + (f" and grpc {host}:{bound_grpc}"
                                                                    if bound_grpc is not None else "")
        table = Table(title=title)
        for col in ("model", "backend", "inputs", "outputs", "batching", "passed over"):
            table.add_column(col)
        for model in repository.models.values():
            meta = model.metadata()
            table.add_row(model.name, model.session.backend,
                          " ".join(f"{t['name']}{t['shape']}" for t in meta["inputs"]),
                          " ".join(t["name"] for t in meta["outputs"]), notes.get(model.name, "-"),
                          "; ".join(f"{k}: {v}" for k, v in model.session.skipped.items()) or "-")
        out.print(table)

    def stop_on_sigterm(signum, frame):
        # uvicorn handles SIGTERM (graceful shutdown), then re-raises it to the handler it found: this one,
        # so that an orchestrator's stop (Kubernetes sends SIGTERM) ends like Ctrl-C, with exit code 0
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        options = serving.ServeOptions(
            host=host, port=port, grpc_port=None if no_grpc else grpc_port, backend=backend, workers=workers,
            max_body_bytes=int(max_body_mb * 1024 * 1024), max_concurrency=max_concurrency, batching=batching,
            max_batch=max_batch, max_delay_ms=max_delay_ms, read_timeout=read_timeout, body_timeout=body_timeout,
            max_json_bytes=int(max_json_mb * 1024 * 1024),
            max_client_concurrency=max_client_concurrency or max(1, max_concurrency // 2), log_level=log_level)
        serve(list(artifact_dirs), options, on_loaded=on_loaded)
    except KeyboardInterrupt:
        # uvicorn re-raises the SIGINT it handled after its graceful shutdown: that is a clean stop here
        pass
    out.print("stopped: in-flight requests finished, sessions closed")
