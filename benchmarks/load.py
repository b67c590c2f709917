"""Load benchmark for `deploykit serve`: throughput and p50/p99 latency over HTTP and gRPC, batching on and off.

    python benchmarks/load.py --artifacts artifacts --out benchmarks/load_results.json

Starts two servers (``--batching`` and ``--no-batching``) on loopback ports, both serving composite and
cbam, and measures every (model, protocol, concurrency, batching) cell for ``--duration`` seconds after a
warm-up, cycling through the cells ``--rounds`` times so that noise from other jobs on the machine hits
every configuration alike (interleaved). Results pool each cell's rounds.

The load generator is light on purpose (tritonclient.http tops out near 72 req/s, far below the
server): one asyncio loop in this process drives ``concurrency`` keep-alive HTTP/1.1 connections with
a pre-encoded binary-tensor request, or ``concurrency`` calls in flight on grpcio's async stub. It shares
the machine's cores with the server, as any client on the same host would; the load average before and
after is recorded. Traffic goes to 127.0.0.1 only, and every run stops after its duration.

``--target LABEL=HOST:HTTP_PORT,GRPC_PORT`` (repeatable) adds an already running server on loopback to
the interleaving, e.g. kserve's ModelServer (benchmarks/kserve_modelserver.py); ``--batching ""``
starts none of deploykit's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPES = {"composite": ("image", (1, 3, 64, 64)), "cbam": ("x", (1, 64, 32, 32))}
CONCURRENCY = (1, 4, 16, 64)
LOOPBACK = "127.0.0.1"


# -- requests ---------------------------------------------------------------------------------------
def http_request(model: str, input_name: str, shape) -> bytes:
    """One pre-encoded KServe v2 binary-tensor request (JSON header + raw FP32), outputs asked as binary."""
    data = np.random.default_rng(0).random(shape, dtype=np.float32)
    raw = data.tobytes()
    header = json.dumps({"inputs": [{"name": input_name, "shape": list(shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "parameters": {"binary_data_output": True}}).encode()
    head = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
            f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {len(header)}\r\n"
            f"Content-Length: {len(header) + len(raw)}\r\n\r\n").encode()
    return head + header + raw


def grpc_request(model: str, input_name: str, shape):
    from tritonclient.grpc import service_pb2 as pb

    data = np.random.default_rng(0).random(shape, dtype=np.float32)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name=input_name, datatype="FP32", shape=list(shape))
    request.raw_input_contents.append(data.tobytes())
    return request


# -- load generators --------------------------------------------------------------------------------
async def _http_worker(port: int, request: bytes, start_at: float, stop_at: float, latencies: list, errors: list):
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length, chunked = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:  # kserve's ModelServer streams binary responses in chunks
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            else:
                await reader.readexactly(length)
            status = int(head[9:12])
            done = time.perf_counter()
            if now >= start_at:  # warm-up requests are sent but not counted
                (latencies if status == 200 else errors).append(done - now)
            if head.lower().find(b"connection: close") >= 0:
                writer.close()
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
    finally:
        writer.close()


async def _grpc_worker(stub, request, start_at: float, stop_at: float, latencies: list, errors: list):
    import grpc

    while True:
        now = time.perf_counter()
        if now >= stop_at:
            return
        try:
            await stub.ModelInfer(request)
            ok = True
        except grpc.aio.AioRpcError:
            ok = False
        done = time.perf_counter()
        if now >= start_at:
            (latencies if ok else errors).append(done - now)


async def _drive(protocol: str, port: int, model: str, concurrency: int, warmup: float, duration: float):
    input_name, shape = SHAPES[model]
    latencies, errors = [], []
    start_at = time.perf_counter() + warmup
    stop_at = start_at + duration
    if protocol == "http":
        request = http_request(model, input_name, shape)
        await asyncio.gather(*(_http_worker(port, request, start_at, stop_at, latencies, errors)
                               for _ in range(concurrency)))
    else:
        import grpc
        from tritonclient.grpc import service_pb2_grpc

        request = grpc_request(model, input_name, shape)
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        async with grpc.aio.insecure_channel(f"{LOOPBACK}:{port}", options=options) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            await asyncio.gather(*(_grpc_worker(stub, request, start_at, stop_at, latencies, errors)
                                   for _ in range(concurrency)))
    return latencies, errors


def measure(protocol: str, port: int, model: str, concurrency: int, warmup: float, duration: float) -> dict:
    latencies, errors = asyncio.run(_drive(protocol, port, model, concurrency, warmup, duration))
    return {"latencies": latencies, "errors": len(errors), "seconds": duration}


# -- servers ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, process, timeout: float = 120.0) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server exited: {process.communicate()[1][-2000:]}")
        try:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"no server became ready on port {port} within {timeout:.0f} s")


def start_server(artifacts: Path, batching: bool, extra: list[str]):
    http_port, grpc_port = _free_port(), _free_port()
    command = [sys.executable, "-c", "from deploykit.cli import run; run()", "serve", *(str(artifacts / m) for m in SHAPES),
               "--port", str(http_port), "--grpc-port", str(grpc_port), "--backend", "ort-cpu",
               "--log-level", "warning", "--batching" if batching else "--no-batching", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_ready(http_port, process)
    return process, {"http": http_port, "grpc": grpc_port}


def server_breakdown(port: int) -> dict:
    """Where a deploykit server's time went, from its own /metrics: per model, runs, mean batch rows,
    and the seconds spent computing and queueing (summed over all requests of the benchmark)."""
    import http.client

    from prometheus_client.parser import text_string_to_metric_families

    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    if response.status != 200:
        return {}
    values: dict = {}
    for family in text_string_to_metric_families(response.read().decode()):
        for sample in family.samples:
            model = sample.labels.get("model")
            if model:
                key = sample.name + (f"/{sample.labels['protocol']}" if "protocol" in sample.labels else "")
                values.setdefault(model, {})[key] = sample.value
    out = {}
    for model, v in values.items():
        runs = v.get("deploykit_executions_total", 0)
        out[model] = {"runs": runs, "rows": v.get("deploykit_inferences_total", 0),
                      "mean_batch": v.get("deploykit_inferences_total", 0) / runs if runs else 0.0,
                      "compute_s": v.get("deploykit_compute_duration_seconds_sum", 0.0),
                      "queue_s": v.get("deploykit_queue_duration_seconds_sum", 0.0),
                      "request_s": sum(x for k, x in v.items() if k.startswith("deploykit_request_duration_seconds_sum"))}
    return out


def summarize(samples: list[dict]) -> dict:
    latencies = sorted(x for s in samples for x in s["latencies"])
    seconds = sum(s["seconds"] for s in samples)
    if not latencies:
        return {"requests": 0, "errors": sum(s["errors"] for s in samples), "throughput": 0.0}
    q = np.quantile(latencies, [0.5, 0.99])
    return {"requests": len(latencies), "errors": sum(s["errors"] for s in samples),
            "throughput": len(latencies) / seconds, "p50_ms": 1000 * float(q[0]), "p99_ms": 1000 * float(q[1]),
            "per_round_throughput": [len(s["latencies"]) / s["seconds"] for s in samples]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"),
                        help="folder with composite/ and cbam/ (deploykit export composite cbam)")
    parser.add_argument("--models", default="composite,cbam")
    parser.add_argument("--protocols", default="http,grpc")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--batching", default="on,off", help="on, off or on,off")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per cell and round")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server-args", default="", help="extra `deploykit serve` options, space-separated")
    parser.add_argument("--target", action="append", default=[],
                        help="LABEL=HOST:HTTP_PORT,GRPC_PORT of a running server on loopback (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.duration > 60 or args.rounds > 10:
        parser.error("bounded: --duration <= 60 s and --rounds <= 10")

    models = args.models.split(",")
    protocols = args.protocols.split(",")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    servers, processes = {}, []
    try:
        for target in args.target:
            label, _, address = target.partition("=")
            host, _, ports = address.partition(":")
            if host not in (LOOPBACK, "localhost"):
                parser.error("--target must be on loopback (127.0.0.1)")
            http_port, _, grpc_port = ports.partition(",")
            servers[label] = {"http": int(http_port), "grpc": int(grpc_port or 0)}
        for mode in filter(None, args.batching.split(",")):
            process, ports = start_server(args.artifacts, mode == "on", args.server_args.split())
            processes.append(process)
            servers[f"batching-{mode}"] = ports
        cells = [(label, model, protocol, c) for model in models for protocol in protocols for c in concurrencies
                 for label in servers]
        samples = {cell: [] for cell in cells}
        load_before = os.getloadavg()
        started = time.time()
        for round_index in range(args.rounds):
            for cell in cells:  # every configuration once per round: noise spreads over all of them
                label, model, protocol, c = cell
                sample = measure(protocol, servers[label][protocol], model, c, args.warmup, args.duration)
                samples[cell].append(sample)
                print(f"round {round_index + 1} {label:>14} {model:>9} {protocol:>4} c={c:<3} "
                      f"{len(sample['latencies']) / sample['seconds']:8.1f} req/s", flush=True)
        load_after = os.getloadavg()
        breakdown = {label: server_breakdown(servers[label]["http"]) for label in servers
                     if label.startswith("batching-")}
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)

    rows = []
    for cell, cell_samples in samples.items():
        label, model, protocol, c = cell
        rows.append({"server": label, "model": model, "protocol": protocol, "concurrency": c,
                     **summarize(cell_samples)})
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "started": started,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "load_average_before": load_before, "load_average_after": load_after,
              "duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds, "rows": rows,
              "server_breakdown": breakdown}
    print(f"\nload average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"{'server':>14} {'model':>9} {'proto':>5} {'conc':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for r in rows:
        print(f"{r['server']:>14} {r['model']:>9} {r['protocol']:>5} {r['concurrency']:>4} {r['throughput']:8.1f} "
              f"{r.get('p50_ms', float('nan')):7.2f} {r.get('p99_ms', float('nan')):7.2f} {r['errors']:>6}")
    for label, models in breakdown.items():
        for model, b in models.items():
            print(f"{label:>14} {model:>9}: {b['rows']:.0f} rows in {b['runs']:.0f} runs (mean batch "
                  f"{b['mean_batch']:.2f}), compute {b['compute_s']:.1f} s, queue {b['queue_s']:.1f} s")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
