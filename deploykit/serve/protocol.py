"""The KServe v2 inference protocol (the one Triton speaks): request parsing and response encoding.

JSON tensors carry ``data`` as a flat (or nested) row-major list. The binary tensor data extension
puts the JSON header first (its length in the ``Inference-Header-Content-Length`` HTTP header) and
the raw little-endian tensors after it, in the order of the inputs that declare
``parameters.binary_data_size``; responses do the same for outputs asked for as binary.
Spec: kserve/open-inference-protocol (REST) and Triton's binary_tensor_data extension.

Everything here is plain numpy + json so it runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..errors import DeployKitError

HEADER_LENGTH = "Inference-Header-Content-Length"

# KServe v2 datatype <-> numpy (little-endian on the wire for binary data)
DATATYPES = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}


def datatype_of(dtype: np.dtype) -> str:
    for name, candidate in DATATYPES.items():
        if np.dtype(dtype).newbyteorder("<") == candidate:
            return name
    raise DeployKitError(f"no KServe v2 datatype for numpy dtype {dtype}")


class RequestError(DeployKitError):
    """A request the client can fix: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: dict[str, bool] | None  # requested output -> binary?; None = all outputs
    binary_default: bool


def _json_object(text: bytes, what: str) -> dict:
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _parameters(entry: dict, where: str) -> dict:
    params = entry.get("parameters", {})
    if not isinstance(params, dict):
        raise RequestError(f"{where}.parameters must be an object")
    return params


def _shape(entry: dict, where: str) -> tuple[int, ...]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f"{where}.shape must be a list of non-negative integers, got {shape!r}")
    return tuple(shape)


def parse_infer_request(body: bytes, header_length: int | None, expected: dict[str, np.dtype]) -> InferRequest:
    """Decode an infer request; ``expected`` maps each model input to its dtype (checked here)."""
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise RequestError(f"{HEADER_LENGTH} is {header_length} but the body has {len(body)} bytes")
        header, binary = body[:header_length], memoryview(body)[header_length:]
    else:
        header, binary = body, memoryview(b"")
    request = _json_object(header, "request body" if header_length is None else "inference header")
    entries = request.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise RequestError("request needs a non-empty \"inputs\" list")
    params = _parameters(request, "request")
    if params.get("classification") or any(
            isinstance(o, dict) and isinstance(o.get("parameters"), dict) and o["parameters"].get("classification")
            for o in request.get("outputs") or []):
        raise RequestError("the classification extension is not supported by this server", 400)

    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, entry in enumerate(entries):
        where = f"inputs[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RequestError(f"{where} must be an object with a \"name\"")
        name = entry["name"]
        where = f"input {name!r}"
        if name in inputs:
            raise RequestError(f"{where} is given twice")
        if name not in expected:
            raise RequestError(f"unknown {where} (model inputs: {', '.join(expected)})")
        datatype = entry.get("datatype")
        want = datatype_of(expected[name])
        if datatype != want:
            raise RequestError(f"{where} has datatype {datatype!r}, the model expects {want!r}")
        shape = _shape(entry, where)
        count = math.prod(shape)
        size = _parameters(entry, where).get("binary_data_size")
        if size is not None:
            if "data" in entry:
                raise RequestError(f"{where} has both \"data\" and binary_data_size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise RequestError(f"{where}.parameters.binary_data_size must be a non-negative integer")
            if size != count * DATATYPES[want].itemsize:
                raise RequestError(f"{where}: binary_data_size is {size} bytes, shape {list(shape)} of {want} "
                                   f"needs {count * DATATYPES[want].itemsize}")
            if offset + size > len(binary):
                raise RequestError(f"{where}: the body ends after {len(binary)} bytes of binary data, "
                                   f"{offset + size} are declared")
            # copied: a tensor right after the JSON header is misaligned, and SIMD kernels then take other
            # code paths (onnxruntime's pooling sums differed in the last bit from the runtime API's)
            array = np.frombuffer(binary[offset:offset + size], dtype=DATATYPES[want]).reshape(shape).copy()
            offset += size
        else:
            if "data" not in entry:
                raise RequestError(f"{where} has no \"data\" (and no binary_data_size)")
            try:
                array = np.asarray(entry["data"], dtype=DATATYPES[want])
            except (TypeError, ValueError) as exc:
                raise RequestError(f"{where}: \"data\" is not a list of {want} numbers: {exc}") from None
            if array.size != count:
                raise RequestError(f"{where}: \"data\" has {array.size} values, shape {list(shape)} needs {count}")
            array = array.reshape(shape)
        inputs[name] = array.astype(expected[name], copy=False)  # native byte order for the backend
    if offset != len(binary):
        raise RequestError(f"the body has {len(binary) - offset} bytes of binary data that no input declares")

    outputs = None
    if request.get("outputs") is not None:
        if not isinstance(request["outputs"], list):
            raise RequestError("\"outputs\" must be a list")
        outputs = {}
        for i, entry in enumerate(request["outputs"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise RequestError(f"outputs[{i}] must be an object with a \"name\"")
            default = params.get("binary_data_output", False)
            outputs[entry["name"]] = bool(_parameters(entry, f"outputs[{i}]").get("binary_data", default))
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError("\"id\" must be a string")
    return InferRequest(request_id, inputs, outputs, bool(params.get("binary_data_output", False)))


def encode_infer_response(model_name: str, version: str, request: InferRequest,
                          results: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length."""
    entries, chunks = [], []
    for name, array in results.items():
        binary = request.outputs[name] if request.outputs is not None else request.binary_default
        entry = {"name": name, "datatype": datatype_of(array.dtype), "shape": list(array.shape)}
        if binary:
            raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            # tolist() gives Python floats, whose repr round-trips float32 exactly
            entry["data"] = array.ravel().tolist()
        entries.append(entry)
    response = {"model_name": model_name, "model_version": version, "outputs": entries}
    if request.id is not None:
        response["id"] = request.id
    try:
        header = json.dumps(response, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        raise RequestError("an output holds NaN or infinity, which JSON cannot carry; "
                           "ask for binary outputs (parameters.binary_data = true)") from None
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)
