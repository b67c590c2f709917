"""Bodies: request size limits before and after decompression, and compressed responses when asked.

tritonclient can gzip/deflate requests and ask for compressed responses; both happen in the worker
thread with the rest of a request's CPU work (a compression middleware would run on the event loop).

Memory per body (``python benchmarks/body_memory.py``, peak RSS over the body itself, FP32 tensors):
a JSON body costs 11.4x its size to parse (every number becomes a Python float, then float64 and
float32 arrays: 1, 4 and 16 MiB bodies took 11, 46 and 183 MB), a binary one 1.0x. So JSON text
has its own, smaller cap (``max_json_bytes``, 16 MiB: at most ~190 MB per request) and large tensors
go binary, up to ``max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import zlib

from .protocol import RequestError

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_READ_TIMEOUT_S = 10.0  # no byte of a request's headers or body for this long: 408, connection closed
# the whole body, however it trickles in: a byte every few seconds must not hold a request slot for ever
DEFAULT_BODY_TIMEOUT_S = 60.0
DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024
DRAIN_FACTOR = 4

# wbits per Content-Encoding: gzip framing, and zlib framing ("deflate" on the web means zlib, RFC 9110 8.4.1.2)
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _too_large(limit: int) -> RequestError:
    return RequestError(f"request body exceeds the server's limit of {limit} bytes "
                        "(deploykit serve --max-body-mb)", 413)


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for "²" and "٣", which int() then refuses (a 500)."""
    return text.isascii() and text.isdigit()


async def read_body(request, limit: int, read_timeout: float | None = None,
                    body_timeout: float | None = DEFAULT_BODY_TIMEOUT_S) -> bytes:
    """The raw body, or 413 when it is larger than ``limit``, or 408 when no byte of it arrives for
    ``read_timeout`` seconds or the whole of it has not arrived ``body_timeout`` seconds after the
    headers (a body short of its Content-Length, or one sent a byte at a time, must not hold a slot).

    A body up to DRAIN_FACTOR x ``limit`` is read to its end and dropped before answering: most
    clients send the whole body before reading the reply, and closing on unread data resets the
    connection, so they would never see the message. Anything larger is refused unread.
    """
    drain = DRAIN_FACTOR * limit
    declared = request.headers.get("content-length")
    if declared is not None:
        if not is_number(declared):
            raise RequestError(f"Content-Length {declared!r} is not a number")
        if int(declared) > drain:
            raise _too_large(limit)
    chunks, size = [], 0
    loop = asyncio.get_running_loop()
    deadline = None if body_timeout is None else loop.time() + body_timeout
    while True:
        waits = [w for w in (read_timeout, None if deadline is None else max(deadline - loop.time(), 0.0))
                 if w is not None]
        try:
            message = await asyncio.wait_for(request.receive(), min(waits) if waits else None)
        except TimeoutError:
            if deadline is not None and loop.time() >= deadline:
                raise RequestError(f"the request body did not arrive within {body_timeout:g} s ({size} of "
                                   f"{declared or 'the chunked'} bytes came; deploykit serve --body-timeout)",
                                   408) from None
            raise RequestError(f"the request body stopped arriving: no data for {read_timeout:g} s after "
                               f"{size} of {declared or 'the chunked'} bytes", 408) from None
        if message["type"] == "http.disconnect":
            raise RequestError("the client disconnected before sending its body", 400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > drain:
            break
        if not message.get("more_body", False):
            break
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def check_json_size(size: int, limit: int | None, what: str) -> None:
    """413 for JSON text over ``limit``: it costs ~11x its size to parse (see the module's docstring)."""
    if limit is not None and size > limit:
        raise RequestError(f"{what} is {size} bytes of JSON, over the server's JSON limit of {limit} bytes "
                           "(deploykit serve --max-json-mb): send large tensors as binary data "
                           "(tritonclient: binary_data=True)", 413)


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding, never inflating past ``limit`` (a small gzip can expand a thousandfold)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in _WBITS:
        raise RequestError(f"Content-Encoding {encoding!r} is not supported (use gzip, deflate or none)", 415)
    inflater = zlib.decompressobj(_WBITS[encoding])
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestError(f"the body is not valid {encoding} data: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return data


def _accepted(accept_encoding: str | None) -> list[str]:
    accepted = []
    for token in (accept_encoding or "").split(","):
        coding, _, params = token.strip().lower().partition(";")
        if coding and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            accepted.append(coding)
    return accepted


def encode_body(body: bytes, accept_encoding: str | None, minimum_size: int = 4096) -> tuple[bytes, str | None]:
    """``body`` compressed with the first of gzip/deflate the client accepts (small bodies stay plain)."""
    if len(body) < minimum_size:
        return body, None
    for coding in ("gzip", "deflate"):
        if coding in _accepted(accept_encoding):
            packer = zlib.compressobj(6, zlib.DEFLATED, _WBITS[coding])
            return packer.compress(body) + packer.flush(), coding
    return body, None
