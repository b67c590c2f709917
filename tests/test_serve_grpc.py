"""deploykit serve over gRPC: tritonclient.grpc answered with the runtime API's results; bad requests get
the gRPC code matching HTTP's 4xx; /metrics counts what was sent, parsed by prometheus-client."""

import http.client

import numpy as np
import pytest

grpc = pytest.importorskip("grpc", reason="the gRPC tests need grpcio (the serve extra)")
grpc_client = pytest.importorskip("tritonclient.grpc", reason="the gRPC tests need tritonclient[grpc]")
http_client = pytest.importorskip("tritonclient.http", reason="the serve tests need tritonclient[http]")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from tritonclient.grpc import service_pb2 as pb  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from deploykit import runtime  # noqa: E402
from deploykit.recipe import find_recipe  # noqa: E402

from .artifact_cache import exported_artifact  # noqa: E402
from .conftest import RECIPES  # noqa: E402
from .serving import json_request, post, running_servers  # noqa: E402

MAX_BODY = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return {name: exported_artifact(tmp_path_factory, name) for name in ("cbam", "fpn")}


@pytest.fixture(scope="module")
def servers(artifacts):
    with running_servers(artifacts.values(), max_body_bytes=MAX_BODY) as running:
        yield running


@pytest.fixture(scope="module")
def channel(servers):
    _, rpc, _, _ = servers
    with grpc.insecure_channel(rpc.url) as channel:
        yield channel


def _call(channel, method: str, message, response_class=pb.ModelInferResponse, **kwargs):
    stub = channel.unary_unary(f"/inference.GRPCInferenceService/{method}",
                               request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                               response_deserializer=response_class.FromString)
    return stub(message, timeout=30, **kwargs)


def _infer_message(model="cbam", name="x", shape=(1, 64, 8, 8), datatype="FP32", raw=None, version="", **extra):
    message = pb.ModelInferRequest(model_name=model, model_version=version)
    tensor = message.inputs.add(name=name, datatype=datatype, shape=list(shape))
    if raw is None:
        raw = np.full(shape, 0.5, np.float32).tobytes() if all(d >= 0 for d in shape) else b""
    if raw is not False:
        message.raw_input_contents.append(raw)
    for key, value in extra.items():
        if key == "outputs":
            for output in value:
                message.outputs.add(name=output)
        elif key == "fp32":
            tensor.contents.fp32_contents.extend(value)
        elif key == "extra_raw":
            message.raw_input_contents.append(value)
        elif key == "classification":
            message.outputs.add(name="y").parameters["classification"].int64_param = value
    return message


def test_tritonclient_grpc_is_answered_like_the_runtime_api(servers, artifacts):
    _, rpc, _, _ = servers
    client = grpc_client.InferenceServerClient(rpc.url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fpn") and not client.is_model_ready("nope")
    assert not client.is_model_ready("cbam", model_version="2")
    assert client.get_server_metadata().name == "deploykit"
    meta = client.get_model_metadata("fpn", as_json=True)
    assert meta["platform"] == "onnxruntime_onnx" and meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("C3", "FP32", ["-1", "16", "-1", "-1"]), ("C4", "FP32", ["-1", "32", "-1", "-1"]),
        ("C5", "FP32", ["-1", "64", "-1", "-1"])]
    for name in ("cbam", "fpn"):
        recipe = find_recipe(name, RECIPES)
        feed = recipe.make_inputs(recipe.case("opt"))
        inputs = []
        for input_name, array in feed.items():
            tensor = grpc_client.InferInput(input_name, list(array.shape), "FP32")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [grpc_client.InferRequestedOutput(n) for n in ("P7", "P3")] if name == "fpn" else None
        result = client.infer(name, inputs, outputs=outputs, request_id="g-1")
        assert result.get_response().id == "g-1"
        with runtime.load(artifacts[name], backend="ort-cpu") as session:
            expected = session.run(feed)
        names = ["P7", "P3"] if name == "fpn" else list(expected)
        assert [o.name for o in result.get_response().outputs] == names
        for n in names:
            np.testing.assert_array_equal(result.as_numpy(n), expected[n])
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.get_model_metadata("nope")
    client.close()


def test_typed_contents_are_parsed_like_json_data(channel, artifacts):
    x = np.random.default_rng(3).standard_normal((1, 64, 8, 8), dtype=np.float32)
    response = _call(channel, "ModelInfer", _infer_message(raw=False, fp32=x.ravel().tolist()))
    y = np.frombuffer(response.raw_output_contents[0], np.float32).reshape(response.outputs[0].shape)
    with runtime.load(artifacts["cbam"], backend="ort-cpu") as session:
        np.testing.assert_array_equal(y, session.run({"x": x})["y"])


_GOOD = _infer_message()
# The 22 HTTP bad-request classes of tests/test_serve.py, each in its gRPC form: (message, code, text)
BAD_GRPC = {
    "bad JSON": (b"\xff\xff\xff\xff", "INVALID_ARGUMENT", "not a valid ModelInferRequest"),
    "JSON that is not an object": (_infer_message(name=""), "INVALID_ARGUMENT", "unknown input ''"),
    "no inputs": (pb.ModelInferRequest(model_name="cbam"), "INVALID_ARGUMENT", "non-empty \"inputs\""),
    "unknown model": (_infer_message(model="nope"), "NOT_FOUND", "unknown model 'nope'"),
    "unknown version": (_infer_message(version="7"), "NOT_FOUND", "no version '7'"),
    "unknown input": (_infer_message(name="z"), "INVALID_ARGUMENT", "unknown input 'z'"),
    "wrong datatype": (_infer_message(datatype="FP64"), "INVALID_ARGUMENT", "datatype 'FP64', the model expects"),
    "data does not fill the shape": (_infer_message(raw=False, fp32=[1.0] * 7), "INVALID_ARGUMENT",
                                     "has 7 values, shape [1, 64, 8, 8] needs 4096"),
    "non-numeric data": (_infer_message(raw=False, fp32=[float("nan")] * 4096), "INVALID_ARGUMENT",
                         "outside FP32's range"),
    "negative shape": (_infer_message(shape=(1, 64, -8, 8)), "INVALID_ARGUMENT", "non-negative integers"),
    "wrong rank": (_infer_message(shape=(64, 8, 8)), "INVALID_ARGUMENT", "rank 3"),
    "static channel": (_infer_message(shape=(1, 32, 8, 8)), "INVALID_ARGUMENT", "fixes it at 64"),
    "out-of-range H": (_infer_message(shape=(1, 64, 65, 8)), "INVALID_ARGUMENT",
                       "H=65 (from input 'x' axis 2) is outside the artifact's range [8, 64]"),
    "out-of-range batch": (_infer_message(shape=(9, 64, 8, 8)), "INVALID_ARGUMENT", "B=9"),
    "binary size mismatch": (_infer_message(raw=bytes(16)), "INVALID_ARGUMENT", "16 bytes of data"),
    "binary data nobody declared": (_infer_message(extra_raw=bytes(8)), "INVALID_ARGUMENT",
                                    "2 raw_input_contents for 1 inputs"),
    "header length past the body": (_infer_message(raw=False), "INVALID_ARGUMENT", "has 0 values"),
    "unknown requested output": (_infer_message(outputs=["logits"]), "INVALID_ARGUMENT",
                                 "unknown output(s) ['logits']"),
    "oversized body": (_infer_message(shape=(3, 64, 64, 64)), "RESOURCE_EXHAUSTED", "larger than max"),
    "gzip bomb": (_infer_message(shape=(3, 64, 64, 64)), "RESOURCE_EXHAUSTED", "larger than max"),  # compressed
    # gRPC negotiates compression itself, so an unknown encoding cannot be sent: an unsupported extension
    "unknown encoding": (_infer_message(classification=3), "INVALID_ARGUMENT", "classification extension"),
    "unknown route": (_infer_message(), "UNIMPLEMENTED", "Method not found"),
}


@pytest.mark.parametrize("case", list(BAD_GRPC))
def test_bad_requests_get_the_matching_grpc_code_and_the_server_keeps_serving(servers, channel, case):
    message, code, text = BAD_GRPC[case]
    method, kwargs = "ModelInfer", {}
    if case == "gzip bomb":
        kwargs["compression"] = grpc.Compression.Gzip  # 3 MiB of 0.5s compresses to a few KiB
    if case == "unknown route":
        method = "ModelExplain"
    with pytest.raises(grpc.RpcError) as raised:
        _call(channel, method, message, **kwargs)
    assert raised.value.code() == getattr(grpc.StatusCode, code), raised.value.details()
    assert text in raised.value.details()
    assert "Traceback" not in raised.value.details()
    # still serving, and still right
    assert _call(channel, "ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse).live
    response = _call(channel, "ModelInfer", _GOOD)
    assert list(response.outputs[0].shape) == [1, 64, 8, 8]


def _samples(text: str) -> dict:
    """{(sample name, frozenset(labels)): value} from Prometheus text, via prometheus-client's own parser."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_the_requests_sent(artifacts):
    with running_servers([artifacts["cbam"]], batching=True, max_delay_ms=5.0) as (server, rpc, _, _):
        good, bad = json_request("x", [2, 64, 8, 8]), json_request("x", [1, 64, 65, 8])
        for _ in range(5):
            assert post(server, "/v2/models/cbam/infer", good)[0] == 200
        for _ in range(2):
            assert post(server, "/v2/models/cbam/infer", bad)[0] == 400
        assert post(server, "/v2/models/nope/infer", good)[0] == 404  # not a label: unknown names are not counted
        with grpc.insecure_channel(rpc.url) as channel:
            for _ in range(3):
                _call(channel, "ModelInfer", _infer_message())
            with pytest.raises(grpc.RpcError):
                _call(channel, "ModelInfer", _infer_message(shape=(9, 64, 8, 8)))
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type").startswith("text/plain")
        samples = _samples(response.read().decode())
        connection.close()

    def value(name, **labels):
        return samples.get((name, frozenset(labels.items())), 0.0)

    assert value("deploykit_requests_total", model="cbam", protocol="http") == 7
    assert value("deploykit_request_failures_total", model="cbam", protocol="http") == 2
    assert value("deploykit_requests_total", model="cbam", protocol="grpc") == 4
    assert value("deploykit_request_failures_total", model="cbam", protocol="grpc") == 1
    assert not any(dict(labels).get("model") == "nope" for _, labels in samples)
    # 5 HTTP requests of B=2 and 3 gRPC requests of B=1 reached the model: 13 rows in 8 or fewer runs
    assert value("deploykit_inferences_total", model="cbam") == 13
    runs = value("deploykit_executions_total", model="cbam")
    assert 1 <= runs <= 8
    assert value("deploykit_batch_size_sum", model="cbam") == 13
    assert value("deploykit_batch_size_count", model="cbam") == runs
    assert value("deploykit_compute_duration_seconds_count", model="cbam") == runs
    assert value("deploykit_queue_duration_seconds_count", model="cbam") == runs
    assert value("deploykit_request_duration_seconds_count", model="cbam", protocol="http") == 7
    assert value("deploykit_request_duration_seconds_count", model="cbam", protocol="grpc") == 4
    assert value("deploykit_compute_duration_seconds_sum", model="cbam") > 0


def test_a_taken_grpc_port_is_one_clear_error():
    import socket

    from deploykit.errors import DeployKitError
    from deploykit.serve import ModelRepository
    from deploykit.serve.grpc_server import GrpcServer
    from deploykit.serve.metrics import ServerMetrics

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DeployKitError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
            GrpcServer(ModelRepository({}), ServerMetrics(), port=port, max_message_bytes=1 << 20)
