"""The KServe v2 gRPC endpoint (GRPCInferenceService, the service tritonclient.grpc speaks) on grpcio.

Imported only when a gRPC port is asked for (grpcio and tritonclient[grpc] are the ``serve`` extra's).
The service and its messages are the protocol's own protobuf definitions as tritonclient compiles
and ships them (tritonclient.grpc.service_pb2 / service_pb2_grpc), so the wire format is Triton's.
It serves the same ModelRepository as HTTP, and every infer request goes through the same checks:
protocol.check_input + array_from_bytes/array_from_values for each tensor, then ServedModel.infer
(the runtime's feed check, batching, metrics). A RequestError's HTTP status maps to a gRPC code.

Implemented: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer (raw
tensor contents or typed contents). The rest (shared memory, repository control, streaming,
statistics, trace/log settings) are not registered, so grpcio answers UNIMPLEMENTED.

The handlers are registered here rather than with the generated add_..._to_server: its deserializers
run before any servicer code, and grpcio turns a message that does not parse into INTERNAL ("Exception
deserializing request!"), a server error; a client's garbage is an INVALID_ARGUMENT.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from tritonclient.grpc import service_pb2 as pb

from ..version import __version__
from ..errors import DeployKitError
from .metrics import ServerMetrics
from .protocol import InferRequest, RequestError, array_from_bytes, array_from_values, check_input, datatype_of
from .repository import VERSION, ModelRepository

log = logging.getLogger("deploykit.serve")


def status_code(http_status: int) -> grpc.StatusCode:
    """The gRPC code for a RequestError's HTTP status (the mapping Triton and KServe use)."""
    return {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
            408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
            415: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE}.get(
        http_status, grpc.StatusCode.INTERNAL if http_status >= 500 else grpc.StatusCode.INVALID_ARGUMENT)


# typed contents field per datatype (FP16 and BF16 have none: raw_input_contents only)
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
             "FP64": "fp64_contents"}


def request_from_grpc(message, expected: dict[str, np.dtype]) -> InferRequest:
    """A ModelInferRequest as the protocol-neutral InferRequest, with the checks HTTP makes."""
    if not message.inputs:
        raise RequestError("request needs a non-empty \"inputs\" list")
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise RequestError(f"{len(raw)} raw_input_contents for {len(message.inputs)} inputs: "
                           "give one per input, in order, or none")
    if any(o.parameters["classification"].int64_param for o in message.outputs if "classification" in o.parameters):
        raise RequestError("the classification extension is not supported by this server")
    inputs: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(message.inputs):
        where, shape, _ = check_input(tensor.name, tensor.datatype, list(tensor.shape), expected, inputs)
        if raw:
            if tensor.HasField("contents"):
                raise RequestError(f"{where} has both contents and raw_input_contents")
            array = array_from_bytes(where, raw[i], tensor.datatype, shape, expected[tensor.name])
        else:
            field = _CONTENTS.get(tensor.datatype)
            if field is None:
                raise RequestError(f"{where}: {tensor.datatype} has no typed contents; send raw_input_contents")
            array = array_from_values(where, list(getattr(tensor.contents, field)), tensor.datatype, shape,
                                      expected[tensor.name])
        inputs[tensor.name] = array
    outputs = {o.name: True for o in message.outputs} if message.outputs else None
    return InferRequest(message.id or None, inputs, outputs, True)


SERVICE = "inference.GRPCInferenceService"


class InferenceServicer:
    """GRPCInferenceService over a ModelRepository."""

    def __init__(self, repository: ModelRepository, metrics: ServerMetrics, workers: int,
                 per_client: int | None = None):
        self.per_client = per_client
        self._clients: dict[str, int] = {}
        self._clients_lock = threading.Lock()
        self.repository = repository
        self.metrics = metrics
        self.ready = False
        batching = any(m.batcher is not None for m in repository.models.values())
        # without a batcher at most ``workers`` inferences run at once, as in the HTTP pool
        self._slots = contextlib.nullcontext() if batching else threading.BoundedSemaphore(workers)

    def _abort(self, context, exc: RequestError):
        context.abort(status_code(exc.status), str(exc))

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.ready)

    def ModelReady(self, request, context):
        # unknown name or version: not ready (Triton's answer; tritonclient's is_model_ready returns False)
        try:
            self.repository.get(request.name, request.version)
        except RequestError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self.ready)

    def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name="deploykit", version=__version__, extensions=[])

    def ModelMetadata(self, request, context):
        try:
            meta = self.repository.get(request.name, request.version).metadata()
        except RequestError as exc:
            return self._abort(context, exc)
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensors(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]],
            outputs=[tensors(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]])

    def ModelInfer(self, message, context):
        known = self.repository.models.get(message.model_name)
        counted = self.metrics.request(known.name, "grpc") if known is not None else contextlib.nullcontext()
        arriving = known.arriving() if known is not None else contextlib.nullcontext()
        try:
            with counted, arriving as arrival:
                model = self.repository.get(message.model_name, message.model_version)
                with self._slots:
                    request = request_from_grpc(message, {t.name: t.dtype for t in model.session.inputs})
                    results = model.infer(request, arrival)
                    return self._response(model.name, message.id, results)
        except RequestError as exc:
            return self._abort(context, exc)
        except Exception as exc:  # a server bug: one line to the client, the traceback to the log
            log.exception("internal error in ModelInfer for %s", message.model_name)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    def _client_slot(self, context):
        """A slot of the caller's address for one inference, or None past ``--max-client-concurrency`` (one client
        holding every slot would deny all the others, as over HTTP)."""
        client = context.peer().rsplit(":", 1)[0]  # "ipv4:127.0.0.1:50412" -> the address without the port
        with self._clients_lock:
            if self.per_client is not None and self._clients.get(client, 0) >= self.per_client:
                return None
            self._clients[client] = self._clients.get(client, 0) + 1
        return client

    def _release(self, client: str) -> None:
        with self._clients_lock:
            self._clients[client] -= 1
            if not self._clients[client]:
                del self._clients[client]  # only clients with inferences in flight are kept

    def handler(self):
        """The grpcio handler for the implemented methods; each request is parsed here (see the docstring)."""

        def limited(method):
            def call(message, context):
                client = self._client_slot(context)
                if client is None:
                    self.metrics.rejected.labels("grpc", "client").inc()
                    return context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                         f"this client address has {self.per_client} inferences in flight, the limit "
                                         "per client (deploykit serve --max-client-concurrency)")
                try:
                    return method(message, context)
                finally:
                    self._release(client)

            return call

        def parsed(method, request_class):
            def call(raw: bytes, context):
                try:
                    message = request_class.FromString(raw)
                except DecodeError as exc:
                    return context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                         f"the request is not a valid {request_class.__name__} message: {exc}")
                return method(message, context)

            return call

        methods = {"ServerLive": pb.ServerLiveRequest, "ServerReady": pb.ServerReadyRequest,
                   "ModelReady": pb.ModelReadyRequest, "ServerMetadata": pb.ServerMetadataRequest,
                   "ModelMetadata": pb.ModelMetadataRequest, "ModelInfer": pb.ModelInferRequest}
        handlers = {}
        for name, request_class in methods.items():
            response_class = getattr(pb, request_class.__name__.replace("Request", "Response"))
            method = limited(self.ModelInfer) if name == "ModelInfer" else getattr(self, name)
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                parsed(method, request_class), response_serializer=response_class.SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def _response(self, name: str, request_id: str, results: dict[str, np.ndarray]):
        response = pb.ModelInferResponse(model_name=name, model_version=VERSION, id=request_id)
        for output, array in results.items():
            # the tensor's bytes go in raw_output_contents, in the outputs' order
            response.outputs.add(name=output, datatype=datatype_of(array.dtype), shape=array.shape)
            response.raw_output_contents.append(
                np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
        return response


class GrpcServer:
    """grpcio's server with the servicer, on its own threads: ``start()`` ... ``stop()``."""

    def __init__(self, repository: ModelRepository, metrics: ServerMetrics, *, host: str = "127.0.0.1",
                 port: int = 8001, workers: int = 2, max_concurrency: int = 64, max_message_bytes: int,
                 max_client_concurrency: int | None = None):
        self.servicer = InferenceServicer(repository, metrics, workers, max_client_concurrency)
        # every RPC past maximum_concurrent_rpcs gets RESOURCE_EXHAUSTED from grpcio itself; the pool is
        # larger than that, so health RPCs are never queued behind inferences
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=max_concurrency + 4, thread_name_prefix="deploykit-grpc"),
            maximum_concurrent_rpcs=max_concurrency,
            options=[("grpc.max_receive_message_length", max_message_bytes),
                     ("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers((self.servicer.handler(),))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise DeployKitError(f"cannot listen for gRPC on {address}: {exc}") from None
        if self.port == 0 and port != 0:
            raise DeployKitError(f"cannot listen for gRPC on {address} (is the port taken?)")
        self.host = host

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "GrpcServer":
        self.server.start()
        self.servicer.ready = True
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Refuse new RPCs, let in-flight ones finish (up to ``grace`` seconds)."""
        self.servicer.ready = False
        self.server.stop(grace).wait(grace + 5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
