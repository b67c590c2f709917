"""deploykit serve: the KServe v2 server, answered by Triton's own Python client, on a loopback port."""

import gzip
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

import numpy as np
import pytest

import tritonclient.http as http_client  # noqa: E402  (in the test extra: a missing client fails, never skips)
from tritonclient.utils import InferenceServerException  # noqa: E402

from deploykit import runtime  # noqa: E402
from deploykit.artifact import Artifact  # noqa: E402
from deploykit.parity.metrics import compare_outputs  # noqa: E402
from deploykit.recipe import find_recipe  # noqa: E402
from deploykit.runners.torch_runner import TorchRunner  # noqa: E402
from deploykit.serve import BackgroundServer, ModelRepository, create_app  # noqa: E402

from .artifact_cache import exported_artifact  # noqa: E402
from .conftest import RECIPES  # noqa: E402
from .serving import free_port, server_process, wait_until_ready  # noqa: E402

MAX_BODY = 2 * 1024 * 1024  # small, so the oversized-body case is cheap


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return {name: exported_artifact(tmp_path_factory, name) for name in ("cbam", "fpn")}


@pytest.fixture(scope="module")
def server(artifacts):
    with ModelRepository.load(list(artifacts.values()), backend="ort-cpu") as repository:
        with BackgroundServer(create_app(repository, max_body_bytes=MAX_BODY, workers=4)) as running:
            yield running


@pytest.fixture()
def client(server):
    c = http_client.InferenceServerClient(server.url, connection_timeout=30, network_timeout=60)
    yield c
    c.close()


def _inputs(feed, binary=True):
    inputs = []
    for name, array in feed.items():
        tensor = http_client.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def _post(server, path, body: bytes, headers=None):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_metadata_and_readiness(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cbam") and client.is_model_ready("fpn", model_version="1")
    assert not client.is_model_ready("nope") and not client.is_model_ready("cbam", model_version="2")
    meta = client.get_server_metadata()
    assert meta["name"] == "deploykit" and "binary_tensor_data" in meta["extensions"]
    fpn = client.get_model_metadata("fpn")
    assert fpn["versions"] == ["1"] and fpn["platform"] == "onnxruntime_onnx"
    assert fpn["inputs"] == [{"name": "C3", "datatype": "FP32", "shape": [-1, 16, -1, -1]},
                             {"name": "C4", "datatype": "FP32", "shape": [-1, 32, -1, -1]},
                             {"name": "C5", "datatype": "FP32", "shape": [-1, 64, -1, -1]}]
    assert [o["name"] for o in fpn["outputs"]] == ["P3", "P4", "P5", "P6", "P7"]
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("name", ["cbam", "fpn"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_inference_matches_the_runtime_api_and_pytorch(client, artifacts, name, binary):
    recipe = find_recipe(name, RECIPES)
    case = recipe.case("opt" if binary else "min")  # JSON is ~5x larger: keep it under MAX_BODY
    feed = recipe.make_inputs(case)
    outputs = [http_client.InferRequestedOutput(n, binary_data=binary) for n in ("P7", "P3")] if name == "fpn" else None
    result = client.infer(name, _inputs(feed, binary), outputs=outputs, request_id="r-1")
    assert result.get_response()["id"] == "r-1" and result.get_response()["model_name"] == name
    with runtime.load(artifacts[name], backend="ort-cpu") as session:
        expected = session.run(feed)
    names = ["P7", "P3"] if name == "fpn" else list(expected)
    assert [o["name"] for o in result.get_response()["outputs"]] == names
    for n in names:
        np.testing.assert_array_equal(result.as_numpy(n), expected[n])
    with TorchRunner(Artifact.open(artifacts[name]).reference_model(recipe), recipe) as reference:
        served = {n: result.as_numpy(n) for n in names}
        for metrics in compare_outputs(served, {n: reference.infer(feed)[n] for n in names}, recipe.tolerance("fp32")):
            assert metrics.passed, metrics.failures


def test_compressed_requests_and_responses(server, client):
    feed = {"x": np.random.default_rng(1).standard_normal((1, 64, 16, 16), dtype=np.float32)}
    plain = client.infer("cbam", _inputs(feed)).as_numpy("y")
    for algorithm in ("gzip", "deflate"):
        result = client.infer("cbam", _inputs(feed), request_compression_algorithm=algorithm,
                              response_compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("y"), plain)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("POST", "/v2/models/cbam/infer", body=_json_request("x", [1, 64, 16, 16]),
                       headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200 and response.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["outputs"][0]["shape"] == [1, 64, 16, 16]


def _json_request(name, shape, datatype="FP32", data=None):
    count = int(np.prod(shape))
    return json.dumps({"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                                   "data": data if data is not None else [0.5] * count}]}).encode()


def _bomb():
    return gzip.compress(_json_request("x", [1, 64, 8, 8])[:-3] + b" " * (3 * MAX_BODY) + b"}]}")


_BINARY_HEADER = json.dumps({"inputs": [{"name": "x", "shape": [1, 64, 8, 8], "datatype": "FP32",
                                        "parameters": {"binary_data_size": 16}}]}).encode()

BAD_REQUESTS = {
    # name: (path, body, headers, status, message)
    "bad JSON": ("/v2/models/cbam/infer", b"{not json", {}, 400, "not valid JSON"),
    "JSON that is not an object": ("/v2/models/cbam/infer", b"[1, 2]", {}, 400, "must be a JSON object"),
    "no inputs": ("/v2/models/cbam/infer", b"{}", {}, 400, "non-empty \"inputs\" list"),
    "unknown model": ("/v2/models/nope/infer", _json_request("x", [1, 64, 8, 8]), {}, 404, "unknown model 'nope'"),
    "unknown version": ("/v2/models/cbam/versions/7/infer", _json_request("x", [1, 64, 8, 8]), {}, 404,
                        "no version '7'"),
    "unknown input": ("/v2/models/cbam/infer", _json_request("z", [1, 64, 8, 8]), {}, 400, "unknown input 'z'"),
    "wrong datatype": ("/v2/models/cbam/infer", _json_request("x", [1, 64, 8, 8], "FP64"), {}, 400,
                       "datatype 'FP64', the model expects 'FP32'"),
    "data does not fill the shape": ("/v2/models/cbam/infer", _json_request("x", [1, 64, 8, 8], data=[1.0] * 7), {},
                                     400, "has 7 values, shape [1, 64, 8, 8] needs 4096"),
    "non-numeric data": ("/v2/models/cbam/infer", _json_request("x", [1, 1, 1, 1], data=["a"]), {}, 400,
                         "not a list of FP32 numbers"),
    "negative shape": ("/v2/models/cbam/infer", _json_request("x", [1, 64, -8, 8], data=[]), {}, 400,
                       "non-negative integers"),
    "wrong rank": ("/v2/models/cbam/infer", _json_request("x", [64, 8, 8]), {}, 400, "rank 3"),
    "static channel": ("/v2/models/cbam/infer", _json_request("x", [1, 32, 8, 8]), {}, 400, "fixes it at 64"),
    "out-of-range H": ("/v2/models/cbam/infer", _json_request("x", [1, 64, 65, 8]), {}, 400,
                       "H=65 (from input 'x' axis 2) is outside the artifact's range [8, 64]"),
    "out-of-range batch": ("/v2/models/cbam/infer", _json_request("x", [9, 64, 8, 8]), {}, 400, "B=9"),
    "binary size mismatch": ("/v2/models/cbam/infer", _BINARY_HEADER + bytes(16),
                             {"Inference-Header-Content-Length": str(len(_BINARY_HEADER))}, 400, "needs 16384"),
    "binary data nobody declared": ("/v2/models/cbam/infer", _json_request("x", [1, 64, 8, 8]) + bytes(8),
                                    {"Inference-Header-Content-Length": str(len(_json_request("x", [1, 64, 8, 8])))},
                                    400, "8 bytes of binary data that no input declares"),
    "header length past the body": ("/v2/models/cbam/infer", b"{}", {"Inference-Header-Content-Length": "99"}, 400,
                                    "Inference-Header-Content-Length is 99"),
    "unknown requested output": ("/v2/models/cbam/infer", json.dumps({
        "inputs": json.loads(_json_request("x", [1, 64, 8, 8]))["inputs"], "outputs": [{"name": "logits"}]}).encode(),
        {}, 400, "unknown output(s) ['logits']"),
    "oversized body": ("/v2/models/cbam/infer", b" " * (MAX_BODY + 1), {}, 413, "exceeds the server's limit"),
    "gzip bomb": ("/v2/models/cbam/infer", _bomb(), {"Content-Encoding": "gzip"}, 413, "exceeds the server's limit"),
    "unknown encoding": ("/v2/models/cbam/infer", b"{}", {"Content-Encoding": "br"}, 415, "'br' is not supported"),
    "unknown route": ("/v2/models/cbam/explain", b"{}", {}, 404, "no route"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(server, client, case):
    path, body, headers, status, message = BAD_REQUESTS[case]
    got, payload = _post(server, path, body, headers)
    assert got == status, payload
    assert message in json.loads(payload)["error"]
    # still serving, and still right
    assert client.is_server_live() and client.is_model_ready("cbam")
    feed = {"x": np.ones((1, 64, 8, 8), np.float32)}
    assert client.infer("cbam", _inputs(feed)).as_numpy("y").shape == (1, 64, 8, 8)


def test_tritonclient_sees_the_reason(client):
    with pytest.raises(InferenceServerException, match=r"\[400\].*inputs must agree"):
        feed = {"C3": np.zeros((1, 16, 32, 32), np.float32), "C4": np.zeros((1, 32, 16, 16), np.float32),
                "C5": np.zeros((1, 64, 4, 4), np.float32)}
        client.infer("fpn", _inputs(feed))
    with pytest.raises(InferenceServerException, match=r"\[413\].*exceeds"):
        client.infer("cbam", _inputs({"x": np.zeros((3, 64, 64, 64), np.float32)}))  # 3 MiB > 2 MiB


def test_a_body_far_over_the_limit_is_refused_unread(server):
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")


def test_wrong_method_is_405(server):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("GET", "/v2/models/cbam/infer")
    response = connection.getresponse()
    assert response.status == 405 and "not allowed" in json.loads(response.read())["error"]
    connection.close()


def test_a_burst_of_concurrent_requests_is_answered_correctly(server, artifacts):
    rng = np.random.default_rng(7)
    feeds = [{"x": rng.standard_normal((1 + i % 3, 64, 8 + 4 * (i % 5), 8 + 4 * (i % 3)), dtype=np.float32)}
             for i in range(32)]
    with runtime.load(artifacts["cbam"], backend="ort-cpu") as session:
        expected = [session.run(f)["y"] for f in feeds]
    client = http_client.InferenceServerClient(server.url, concurrency=16, network_timeout=60)
    try:
        pending = [client.async_infer("cbam", _inputs(f), request_id=str(i)) for i, f in enumerate(feeds)]
        results = [p.get_result(block=True, timeout=60) for p in pending]
    finally:
        client.close()
    for i, (result, want) in enumerate(zip(results, expected)):
        assert result.get_response()["id"] == str(i)
        np.testing.assert_array_equal(result.as_numpy("y"), want)


class _Gate:
    """Holds a session's run() until released, to observe the server while an inference is in flight."""

    def __init__(self, session):
        self.entered, self.release = threading.Event(), threading.Event()
        self.run = session.run

    def __call__(self, feed, outputs=None):
        self.entered.set()
        assert self.release.wait(30)
        return self.run(feed, outputs=outputs)


def test_inference_does_not_block_the_event_loop_and_shutdown_is_clean(artifacts):
    repository = ModelRepository.load([artifacts["cbam"]], backend="ort-cpu")
    gate = _Gate(repository.models["cbam"].session)
    repository.models["cbam"].session.run = gate
    running = BackgroundServer(create_app(repository, workers=2)).start()
    answers = {}

    def slow_request():
        c = http_client.InferenceServerClient(running.url, network_timeout=60)
        answers["y"] = c.infer("cbam", _inputs({"x": np.ones((1, 64, 8, 8), np.float32)})).as_numpy("y")
        c.close()

    try:
        worker = threading.Thread(target=slow_request)
        worker.start()
        assert gate.entered.wait(30), "the request never reached the model"
        # the inference is parked in the worker pool: the event loop still answers
        probe = http_client.InferenceServerClient(running.url, network_timeout=10)
        started = time.monotonic()
        assert probe.is_server_live() and probe.is_model_ready("cbam")
        assert probe.get_model_metadata("cbam")["name"] == "cbam"
        assert time.monotonic() - started < 5
        probe.close()
        # shutdown while the request is in flight: it must still complete, then the server stops
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        time.sleep(0.2)
        assert "y" not in answers
        gate.release.set()
        worker.join(30)
        stopper.join(30)
        assert answers["y"].shape == (1, 64, 8, 8)
        assert not running.thread.is_alive()
        with pytest.raises(OSError):
            socket.create_connection((running.host, running.port), timeout=2).close()
    finally:
        gate.release.set()
        if running.thread.is_alive():
            running.stop()
        repository.close()
    assert not repository.models["cbam"].session.runner.active


@pytest.mark.slow
def test_cli_serves_and_stops_cleanly_on_sigint(artifacts):
    port = free_port()
    command = [sys.executable, "-c", "from deploykit.cli import run; run()", "serve", str(artifacts["cbam"]),
               "--port", str(port), "--grpc-port", "0", "--backend", "ort-cpu", "--log-level", "warning"]
    with server_process(command, {**os.environ, "COLUMNS": "200"}) as process:
        client = http_client.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=2)
        wait_until_ready(client, process)
        y = client.infer("cbam", _inputs({"x": np.ones((1, 64, 8, 8), np.float32)})).as_numpy("y")
        assert y.shape == (1, 64, 8, 8)
        client.close()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "cbam" in stderr and "stopped" in stderr


def test_cli_errors_are_one_line(tmp_path):
    from click.testing import CliRunner

    from deploykit.cli import main

    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2 and "name at least one artifact folder" in result.output
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "no artifact in" in result.output and "Traceback" not in result.output
