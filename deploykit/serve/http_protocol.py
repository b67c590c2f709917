"""uvicorn's h11 protocol with JSON errors and a read timeout for everything before the app sees a request.

uvicorn answers what never reaches the app itself, in plain text: a garbage request line or a bad
Content-Length (h11 refuses it: "Invalid HTTP request received."), and it has no timeout for a
request whose headers never finish (a slow client holds the connection for as long as it likes;
its keep-alive timer only runs between requests). h11 has neither setting, so this subclass adds:

- a JSON 400 ``{"error": ...}`` with h11's reason, instead of the plain-text one;
- a read timeout from the first byte of a request (or from connect) to its complete headers:
  a connection that sent part of a request gets a JSON 408 and is closed, an idle one is closed.

The body's read timeout is the app's (serve.body.read_body), which sees each chunk arrive.
uvicorn's own limit_concurrency (a plain-text 503) is not used: the app limits requests in flight.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .body import DEFAULT_READ_TIMEOUT_S


def raw_json_response(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (written without h11: h11's state machine
    will not send a response to a request it has not received, which is exactly the timeout case)."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    return head + body


def protocol_class(read_timeout_s: float = DEFAULT_READ_TIMEOUT_S):
    """The uvicorn ``http=`` protocol class, with the read timeout bound in."""

    class JsonH11Protocol(H11Protocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.limit_concurrency = None  # the app answers this in JSON (serve.app.ConcurrencyLimit)
            self._header_timer = None
            self._reason = None
            # uvicorn catches h11's RemoteProtocolError and keeps only a fixed message; the reason
            # ("illegal request line", "bad Content-Length", ...) is worth passing on to the client
            next_event = self.conn.next_event

            def next_event_keeping_the_reason():
                try:
                    return next_event()
                except h11.RemoteProtocolError as exc:
                    self._reason = str(exc)
                    raise

            self.conn.next_event = next_event_keeping_the_reason

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(read_timeout_s, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return  # a request is with the app: its body has its own timeout
            if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
                self.transport.close()  # nothing of a request arrived: an idle connection
                return
            self.logger.warning("request headers not complete within %.3g s", read_timeout_s)
            self.transport.write(raw_json_response(
                408, "Request Timeout", f"the request headers did not arrive within {read_timeout_s:g} s"))
            self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # h11 produced a Request: the headers are complete
                self._cancel_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()  # the next request's headers, or idling past keep-alive

        def send_400_response(self, msg: str) -> None:
            self._cancel_header_timer()
            reason = self._reason or "the request line, headers or Content-Length are not valid HTTP/1.1"
            self.transport.write(raw_json_response(400, "Bad Request", f"malformed HTTP request: {reason}"))
            self.transport.close()

    return JsonH11Protocol
