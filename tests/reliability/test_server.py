"""Bad-input suite, server class (issue 13): what a careless or hostile client sends to `deploykit serve`.

Every case asserts the HTTP status and a one-line JSON error (or the gRPC status code), no traceback in
the answer, and that the server still answers a good request, correctly, right after. One server pair
(HTTP + gRPC) for the module, with small limits so the limit cases are cheap: 1 MiB bodies, 4 requests
in flight, a 1 s read timeout.
"""

import json
import socket
import time

import numpy as np
import pytest

grpc = pytest.importorskip("grpc", reason="the server suite needs grpcio (the serve extra)")
from tritonclient.grpc import service_pb2 as pb  # noqa: E402

from ..artifact_cache import exported_artifact  # noqa: E402
from ..serving import json_request, post, raw_exchange, running_servers, split_response  # noqa: E402

MAX_BODY = 1024 * 1024
MAX_CONCURRENCY = 4
READ_TIMEOUT = 1.0
INFER = "/v2/models/cbam/infer"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    artifact = exported_artifact(tmp_path_factory, "cbam")
    with running_servers([artifact], max_body_bytes=MAX_BODY, max_concurrency=MAX_CONCURRENCY,
                         read_timeout=READ_TIMEOUT) as running:
        yield running


def _still_serving(servers, patience: float = 0.0):
    """A good request over each protocol gets the right answer (retrying up to ``patience`` seconds)."""
    server, rpc, repository, _ = servers
    x = np.linspace(-1, 1, 64 * 8 * 8, dtype=np.float32).reshape(1, 64, 8, 8)
    expected = repository.models["cbam"].session.run({"x": x})["y"]
    deadline = time.monotonic() + patience
    while True:
        status, body, _ = post(server, INFER, json_request("x", [1, 64, 8, 8], data=x.ravel().tolist()))
        if status == 200 or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert status == 200, body
    np.testing.assert_array_equal(np.array(json.loads(body)["outputs"][0]["data"], np.float32).reshape(x.shape),
                                  expected)
    with grpc.insecure_channel(rpc.url) as channel:
        message = pb.ModelInferRequest(model_name="cbam")
        message.inputs.add(name="x", datatype="FP32", shape=[1, 64, 8, 8])
        message.raw_input_contents.append(x.tobytes())
        response = _grpc_infer(channel, message)
    np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[0], np.float32).reshape(x.shape),
                                  expected)


def _assert_json_error(status, body: bytes, want: int, text: str):
    assert status == want, body[:300]
    assert b"Traceback" not in body and b'File "' not in body
    payload = json.loads(body)
    assert set(payload) == {"error"} and "\n" not in payload["error"], payload
    assert text in payload["error"], payload["error"]


def _data(values: str) -> bytes:
    """An infer body for cbam 1x64x1x1 whose "data" is the literal JSON text ``values`` (64 entries)."""
    return (b'{"inputs": [{"name": "x", "shape": [1, 64, 1, 1], "datatype": "FP32", "data": ['
            + values.encode() + b"]}]}")


def _with_first(literal: str) -> bytes:
    return _data(", ".join([literal] + ["0.5"] * 63))


def _entry(**fields) -> bytes:
    entry = {"name": "x", "shape": [1, 64, 1, 1], "datatype": "FP32", "data": [0.5] * 64, **fields}
    return json.dumps({"inputs": [entry]}).encode()


_HEADER = json.dumps({"inputs": [{"name": "x", "shape": [1, 64, 1, 1], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 256}}]}).encode()

# name: (body, extra headers, status, message)
HTTP_BODIES = {
    # strict numbers per datatype (issue 13 cause 9)
    "integer literal 10**400 as FP32": (_with_first("1" + "0" * 400), {}, 400, "outside FP32's range"),
    "float literal 1e400 as FP32": (_with_first("1e400"), {}, 400, "outside FP32's range"),
    "1e39 overflows FP32": (_with_first("1e39"), {}, 400, "outside FP32's range"),
    "-3.5e38 overflows FP32": (_with_first("-3.5e38"), {}, 400, "outside FP32's range"),
    "NaN as FP32": (_with_first("NaN"), {}, 400, "NaN is not a number JSON allows"),
    "Infinity as FP32": (_with_first("Infinity"), {}, 400, "Infinity is not a number JSON allows"),
    "-Infinity as FP32": (_with_first("-Infinity"), {}, 400, "-Infinity is not a number JSON allows"),
    "null as FP32": (_with_first("null"), {}, 400, "not a list of FP32 numbers: got null"),
    "true as FP32": (_with_first("true"), {}, 400, "not a list of FP32 numbers: got true"),
    "a string as FP32": (_with_first('"1.5"'), {}, 400, "not a list of FP32 numbers"),
    "an object as FP32": (_with_first('{"v": 1}'), {}, 400, "not a list of FP32 numbers"),
    # structure
    "deeply nested JSON": (b'{"inputs": ' + b"[" * 100000 + b"]" * 100000 + b"}", {}, 400, "nested too deeply"),
    "deeply nested data": (_entry(data=json.loads("[" * 200 + "0.5" + "]" * 200)), {}, 400, "nested too deeply"),
    "ragged nested data": (_entry(data=[[0.5] * 32, [0.5] * 31]), {}, 400, "has 63 values"),
    "lists mixed with numbers": (_entry(data=[[0.5] * 63, 0.5]), {}, 400, "mixes lists and numbers"),
    "data that is not a list": (_entry(data=0.5), {}, 400, "\"data\" must be a list"),
    "shape with a boolean": (_entry(shape=[True, 64, 1, 1]), {}, 400, "non-negative integers"),
    "shape with a float": (_entry(shape=[1.0, 64, 1, 1]), {}, 400, "non-negative integers"),
    "shape of 10**400": (_entry(shape=[10 ** 400, 64, 1, 1]), {}, 400, "non-negative integers below 2**63"),
    "no datatype": (json.dumps({"inputs": [{"name": "x", "shape": [1, 64, 1, 1], "data": [0.5] * 64}]}).encode(),
                    {}, 400, "has datatype None"),
    "a name that is not a string": (_entry(name=7), {}, 400, "must be an object with a \"name\""),
    "an input given twice": (json.dumps({"inputs": [json.loads(_entry())["inputs"][0]] * 2}).encode(), {}, 400,
                             "given twice"),
    "an id that is not a string": (json.dumps({"id": 5, **json.loads(_entry())}).encode(), {}, 400,
                                   "\"id\" must be a string"),
    "outputs that are not a list": (json.dumps({"outputs": {}, **json.loads(_entry())}).encode(), {}, 400,
                                    "\"outputs\" must be a list"),
    "parameters that are not an object": (json.dumps({"parameters": [], **json.loads(_entry())}).encode(), {}, 400,
                                          "parameters must be an object"),
    "the classification extension": (json.dumps({"outputs": [{"name": "y", "parameters": {"classification": 3}}],
                                                 **json.loads(_entry())}).encode(), {}, 400,
                                     "classification extension is not supported"),
    "top-level null": (b"null", {}, 400, "must be a JSON object, got NoneType"),
    "an empty body": (b"", {}, 400, "not valid JSON"),
    "bytes that are not UTF-8": (b'{"inputs": "\xff\xfe"}', {}, 400, "not valid JSON"),
    # binary extension
    "negative binary_data_size": (json.dumps({"inputs": [{"name": "x", "shape": [1, 64, 1, 1], "datatype": "FP32",
                                                         "parameters": {"binary_data_size": -4}}]}).encode(),
                                  {}, 400, "binary_data_size must be a non-negative integer"),
    "boolean binary_data_size": (json.dumps({"inputs": [{"name": "x", "shape": [1, 64, 1, 1], "datatype": "FP32",
                                                        "parameters": {"binary_data_size": True}}]}).encode(),
                                 {}, 400, "binary_data_size must be a non-negative integer"),
    "both data and binary_data_size": (_entry(parameters={"binary_data_size": 256}), {}, 400,
                                       "both \"data\" and binary_data_size"),
    "binary data cut short": (_HEADER + bytes(100), {"Inference-Header-Content-Length": str(len(_HEADER))}, 400,
                              "the body ends after 100 bytes of binary data, 256 are declared"),
    "a header length that is not a number": (_HEADER, {"Inference-Header-Content-Length": "12abc"}, 400,
                                             "'12abc' is not a number"),
    "a zero header length": (_HEADER, {"Inference-Header-Content-Length": "0"}, 400,
                             "Inference-Header-Content-Length is 0"),
    "gzip that is not gzip": (b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "not valid gzip data"),
}


@pytest.mark.parametrize("case", list(HTTP_BODIES))
def test_bad_http_bodies(servers, case):
    body, headers, status, message = HTTP_BODIES[case]
    got, payload, _ = post(servers[0], INFER, body, headers)
    _assert_json_error(got, payload, status, message)
    _still_serving(servers)


# what never reaches the app: uvicorn/h11 refuse it, and deploykit's protocol class answers in JSON
RAW_REQUESTS = {
    "a garbage request line": (b"HELLO THERE\r\n\r\n", 400, "malformed HTTP request"),
    "a Content-Length that is not a number": (b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: twelve\r\n\r\n{}", 400, "malformed HTTP request"),
    "two different Content-Lengths": (b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                      b"Content-Length: 3\r\n\r\n{}", 400, "malformed HTTP request"),
    "a header line without a colon": (b"GET /v2 HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400,
                                      "malformed HTTP request"),
    "a request line with no version": (b"GET /v2\r\n\r\n", 400, "malformed HTTP request"),
    "a Content-Length far over the limit": (b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Length: 99999999999\r\n\r\n", 413, "exceeds the server's limit"),
    "a POST on /metrics": (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "not allowed"),
}


@pytest.mark.parametrize("case", list(RAW_REQUESTS))
def test_malformed_http_gets_a_json_error(servers, case):
    data, status, message = RAW_REQUESTS[case]
    got, headers, body = split_response(raw_exchange(servers[0], data, timeout=10))
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    assert headers["content-type"].startswith("application/json")
    _assert_json_error(got, body, status, message)
    _still_serving(servers)


@pytest.mark.parametrize("case", ["a body short of its Content-Length", "headers that never finish"])
def test_a_stalled_request_gets_408_within_the_read_timeout(servers, case):
    if case == "headers that never finish":
        data, message = b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\nContent-Le", "request headers did not"
    else:
        data = b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\": "
        message = "request body stopped arriving"
    started = time.monotonic()
    got, headers, body = split_response(raw_exchange(servers[0], data, timeout=15))
    elapsed = time.monotonic() - started
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 5, elapsed  # not 45 s, and not before the timeout
    _assert_json_error(got, body, 408, message)
    assert headers.get("connection") == "close"
    _still_serving(servers)


def test_an_idle_connection_is_closed(servers):
    started = time.monotonic()
    with socket.create_connection((servers[0].host, servers[0].port), timeout=15) as sock:
        assert sock.recv(100) == b""  # closed by the server, nothing sent
    assert time.monotonic() - started < READ_TIMEOUT + 5
    _still_serving(servers)


def test_requests_beyond_max_concurrency_get_a_json_503(servers):
    server = servers[0]
    held = []
    try:
        for _ in range(MAX_CONCURRENCY):  # each holds a slot: headers sent, body never finished
            sock = socket.create_connection((server.host, server.port), timeout=10)
            sock.sendall(b"POST /v2/models/cbam/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            held.append(sock)
        time.sleep(0.2)
        status, body, headers = post(server, INFER, json_request("x", [1, 64, 8, 8]))
        _assert_json_error(status, body, 503, "--max-concurrency")
        assert headers.get("retry-after") == "1"
        # health and metrics stay answerable while the server is full
        import http.client

        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        connection.request("GET", "/v2/health/live")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        for sock in held:
            sock.close()
    _still_serving(servers, patience=5.0)


# -- gRPC -------------------------------------------------------------------------------------------------
def _grpc_infer(channel, message, **kwargs):
    stub = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                               request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                               response_deserializer=pb.ModelInferResponse.FromString)
    return stub(message, timeout=30, **kwargs)


def _grpc_message(shape=(1, 64, 1, 1), raw=None, fp32=None, model="cbam", datatype="FP32"):
    message = pb.ModelInferRequest(model_name=model)
    tensor = message.inputs.add(name="x", datatype=datatype, shape=list(shape))
    if fp32 is not None:
        tensor.contents.fp32_contents.extend(fp32)
    if raw is not None:
        message.raw_input_contents.append(raw)
    return message


GRPC_CASES = {
    "bytes that are not protobuf": (b"\x0a\xff\xff\xff\xff\x0f", "INVALID_ARGUMENT", "not a valid ModelInferRequest"),
    "NaN in fp32_contents": (_grpc_message(fp32=[float("nan")] + [0.5] * 63), "INVALID_ARGUMENT", "FP32's range"),
    "infinity in fp32_contents": (_grpc_message(fp32=[float("inf")] + [0.5] * 63), "INVALID_ARGUMENT",
                                  "FP32's range"),
    "contents and raw contents both": (_grpc_message(fp32=[0.5] * 64, raw=bytes(256)), "INVALID_ARGUMENT",
                                       "both contents and raw_input_contents"),
    "a shape of 2**62": (_grpc_message(shape=(2 ** 62, 64, 1, 1), raw=bytes(256)), "INVALID_ARGUMENT",
                         "bytes of data"),
    "FP16 without raw contents": (_grpc_message(datatype="FP16"), "INVALID_ARGUMENT", "the model expects 'FP32'"),
    "a message over the limit": (_grpc_message(shape=(1, 64, 64, 80), raw=bytes(4 * 64 * 64 * 80)),
                                 "RESOURCE_EXHAUSTED", "larger than max"),
    "an empty model name": (_grpc_message(model="", raw=bytes(256)), "NOT_FOUND", "unknown model ''"),
}


@pytest.mark.parametrize("case", list(GRPC_CASES))
def test_bad_grpc_requests(servers, case):
    message, code, text = GRPC_CASES[case]
    with grpc.insecure_channel(servers[1].url) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            _grpc_infer(channel, message)
    assert raised.value.code() == getattr(grpc.StatusCode, code), raised.value.details()
    assert text in raised.value.details() and "Traceback" not in raised.value.details()
    _still_serving(servers)


def test_grpc_metadata_of_an_unknown_model_is_not_found(servers):
    with grpc.insecure_channel(servers[1].url) as channel:
        stub = channel.unary_unary("/inference.GRPCInferenceService/ModelMetadata",
                                   request_serializer=pb.ModelMetadataRequest.SerializeToString,
                                   response_deserializer=pb.ModelMetadataResponse.FromString)
        with pytest.raises(grpc.RpcError) as raised:
            stub(pb.ModelMetadataRequest(name="../../etc/passwd"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND and "unknown model" in raised.value.details()
    _still_serving(servers)
