"""Test helpers: deploykit's HTTP and gRPC servers over one repository on loopback ports, and raw clients."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import time

from deploykit.serve import BackgroundServer, ModelRepository, create_app
from deploykit.serve.metrics import ServerMetrics


@contextlib.contextmanager
def running_servers(artifact_dirs, *, batching=False, max_batch=None, max_delay_ms=2.0, grpc=True, workers=4,
                    **app_options):
    """(http BackgroundServer, GrpcServer or None, repository, metrics), all stopped and closed on exit."""
    with ModelRepository.load(list(artifact_dirs), backend="ort-cpu") as repository:
        metrics = ServerMetrics()
        repository.enable(metrics=metrics, batching=batching, max_batch=max_batch, max_delay_ms=max_delay_ms)
        app = create_app(repository, metrics=metrics, workers=workers, **app_options)
        with contextlib.ExitStack() as stack:
            rpc = None
            if grpc:
                from deploykit.serve.grpc_server import GrpcServer

                rpc = stack.enter_context(GrpcServer(
                    repository, metrics, port=0, workers=workers,
                    max_concurrency=app_options.get("max_concurrency") or 64,
                    max_message_bytes=app_options.get("max_body_bytes", 64 << 20)))
            server = stack.enter_context(BackgroundServer(app))
            yield server, rpc, repository, metrics


def post(server, path, body: bytes, headers=None, timeout=30):
    """(status, body bytes, headers) of one POST on a fresh connection."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def raw_exchange(server, data: bytes, timeout=10.0) -> bytes:
    """Send raw bytes, return the server's answer: one response (by its Content-Length), or all it sends
    until it closes (or ``timeout``)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            received = b"".join(chunks)
            if b"\r\n\r\n" in received:
                _, headers, body = split_response(received)
                if "content-length" in headers and len(body) >= int(headers["content-length"]):
                    break
        return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def json_request(name, shape, datatype="FP32", data=None) -> bytes:
    count = 1
    for d in shape:
        count *= d
    return json.dumps({"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                                   "data": data if data is not None else [0.5] * count}]}).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(client, process, timeout: float = 60.0) -> None:
    """Poll a tritonclient until the server in ``process`` is ready; fail with its output if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.is_server_ready():
                return
        except Exception:  # not listening yet
            pass
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"the server did not become ready within {timeout:.0f} s"
        time.sleep(0.2)


@contextlib.contextmanager
def server_process(command, env):
    """A server subprocess (text pipes), killed on exit if the test left it running."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
