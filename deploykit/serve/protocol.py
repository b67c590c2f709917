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


MAX_JSON_DEPTH = 64  # deeper nesting is an attack, not a tensor (json.loads would hit RecursionError)


def _reject_constant(name: str):
    raise RequestError(f"{name} is not a number JSON allows (RFC 8259); send finite numbers, or binary data")


def _json_object(text: bytes, what: str) -> dict:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _parameters(entry: dict, where: str) -> dict:
    params = entry.get("parameters", {})
    if not isinstance(params, dict):
        raise RequestError(f"{where}.parameters must be an object")
    return params


def check_input(name, datatype, shape, expected: dict[str, np.dtype], seen) -> tuple[str, tuple[int, ...], int]:
    """The checks every protocol makes on one input before its data is read: name, datatype, shape.

    Returns (where, shape, element count); HTTP/JSON and gRPC both call this, then ``array_from_bytes``
    or ``array_from_values``, so a bad input gets the same message whichever way it came.
    """
    where = f"input {name!r}"
    if name in seen:
        raise RequestError(f"{where} is given twice")
    if name not in expected:
        raise RequestError(f"unknown {where} (model inputs: {', '.join(expected)})")
    want = datatype_of(expected[name])
    if datatype != want:
        raise RequestError(f"{where} has datatype {datatype!r}, the model expects {want!r}")
    if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2 ** 63 for d in shape):
        got = repr(shape)
        raise RequestError(f"{where}.shape must be a list of non-negative integers below 2**63 (int64), "
                           f"got {got if len(got) <= 80 else got[:80] + '...'}")
    return where, tuple(shape), math.prod(shape)


def array_from_bytes(where: str, raw, datatype: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Raw little-endian tensor bytes (binary extension, gRPC raw_input_contents) as a native array."""
    need = math.prod(shape) * DATATYPES[datatype].itemsize
    if len(raw) != need:
        raise RequestError(f"{where}: {len(raw)} bytes of data, shape {list(shape)} of {datatype} needs {need}")
    # copied: a tensor right after the JSON header is misaligned, and SIMD kernels then take other
    # code paths (onnxruntime's pooling sums differed in the last bit from the runtime API's)
    array = np.frombuffer(raw, dtype=DATATYPES[datatype]).reshape(shape).copy()
    return array.astype(dtype, copy=False)  # native byte order for the backend


def _flatten(values, where: str) -> list:
    """Row-major leaves of a (possibly nested) list; anything but lists at the inner levels is refused."""
    if not isinstance(values, list):
        raise RequestError(f"{where}: \"data\" must be a list, got {type(values).__name__}")
    flat, depth = values, 0
    while flat and any(isinstance(v, list) for v in flat):
        depth += 1
        if depth > MAX_JSON_DEPTH or not all(isinstance(v, list) for v in flat):
            raise RequestError(f"{where}: \"data\" mixes lists and numbers, or is nested too deeply")
        flat = [leaf for v in flat for leaf in v]
    return flat


def array_from_values(where: str, values, datatype: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A JSON (or gRPC typed-contents) value list, parsed strictly for ``datatype``.

    numpy's own conversion is too lenient for a server: it takes true as 1.0, null as NaN (object
    arrays), 1e39 as float32 inf, and raises OverflowError (a 500) for the integer literal 10**400.
    Every value must be of the datatype's kind and representable in it.
    """
    flat = _flatten(values, where)
    count = math.prod(shape)
    if len(flat) != count:
        raise RequestError(f"{where}: \"data\" has {len(flat)} values, shape {list(shape)} needs {count}")
    kinds = set(map(type, flat))
    wire = DATATYPES[datatype]
    if datatype == "BOOL":
        allowed, what = {bool}, "true/false"
    elif wire.kind in "iu":
        allowed, what = {int}, f"{datatype} integers"
    else:
        allowed, what = {int, float}, f"{datatype} numbers"
    if not kinds <= allowed:
        bad = next(v for v in flat if type(v) not in allowed)
        raise RequestError(f"{where}: \"data\" is not a list of {what}: got {json.dumps(bad)[:40]}")
    if wire.kind in "iu" and flat:
        low, high = np.iinfo(wire).min, np.iinfo(wire).max
        if min(flat) < low or max(flat) > high:
            raise RequestError(f"{where}: \"data\" has a value outside {datatype}'s range [{low}, {high}]")
        return np.array(flat, dtype=wire).reshape(shape).astype(dtype, copy=False)
    if wire.kind == "f" and flat:
        try:
            wide = np.array(flat, dtype=np.float64)
        except OverflowError:  # an integer literal beyond any float
            raise RequestError(f"{where}: \"data\" has a value outside {datatype}'s range") from None
        limit = float(np.finfo(wire).max)
        if not np.all(np.abs(wide) <= limit):  # also false for the inf that json reads from 1e400
            raise RequestError(f"{where}: \"data\" has a value outside {datatype}'s range (|x| <= {limit:.6g})")
        return wide.astype(wire).reshape(shape).astype(dtype, copy=False)
    return np.array(flat, dtype=wire).reshape(shape).astype(dtype, copy=False)


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
        where, shape, count = check_input(entry["name"], entry.get("datatype"), entry.get("shape"), expected, inputs)
        datatype, dtype = entry["datatype"], expected[entry["name"]]
        size = _parameters(entry, where).get("binary_data_size")
        if size is not None:
            if "data" in entry:
                raise RequestError(f"{where} has both \"data\" and binary_data_size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise RequestError(f"{where}.parameters.binary_data_size must be a non-negative integer")
            if size != count * DATATYPES[datatype].itemsize:
                raise RequestError(f"{where}: binary_data_size is {size} bytes, shape {list(shape)} of {datatype} "
                                   f"needs {count * DATATYPES[datatype].itemsize}")
            if offset + size > len(binary):
                raise RequestError(f"{where}: the body ends after {len(binary)} bytes of binary data, "
                                   f"{offset + size} are declared")
            array = array_from_bytes(where, binary[offset:offset + size], datatype, shape, dtype)
            offset += size
        else:
            if "data" not in entry:
                raise RequestError(f"{where} has no \"data\" (and no binary_data_size)")
            array = array_from_values(where, entry["data"], datatype, shape, dtype)
        inputs[entry["name"]] = array
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
