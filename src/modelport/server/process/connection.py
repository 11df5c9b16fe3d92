"""One client connection of a worker: uvicorn's httptools protocol with timeouts, limits
and a drain that answers what arrives.

uvicorn's ``HttpToolsProtocol`` parses requests and runs the app; on its own it lets a
connection that sends nothing, half a header or half a body stay open forever, and
takes any number and size of headers (httptools has no limit). ``WorkerConnection``
adds, per connection:

* **Timeouts.** A new connection must complete its first request's header block within
  ``header_timeout_s``, and every later request within ``header_timeout_s`` of its first
  byte; a kept-alive connection with no request closes after ``keep_alive_s`` (uvicorn's
  own timer); a request body that stops arriving for ``body_timeout_s`` while the server
  waits for it is answered 408. A connection that never sent a byte is closed without an
  answer; one that timed out mid-request gets 408. These are checked once a second by
  ``WorkerServer`` walking its connections (``check_timeouts``), so that a request pays
  no timer of its own: it records the server's coarse clock (``ConnectionsState.clock``,
  updated every 0.1 s) when it starts and when it is answered. Measured on the protocol
  alone (requests fed to ``data_received``), the additions cost about 1 µs a request.
* **Limits.** More than ``max_headers`` header fields or ``max_header_bytes`` of request
  line and headers: 431 (414 when the request target alone is too long), counted while
  the bytes arrive, before a header is held whole. More than ``max_connections`` open
  connections in the worker: the longest-waiting connection that has no request with
  the app (idle with no unread bytes, or still sending its headers, then answered 503)
  is closed to make room, as nginx does; when there is none, the new connection's
  request is answered 503 with ``Retry-After: 1``. Bodies are counted as they arrive
  by the app, which refuses ``max_body_bytes`` with 413 (``server.http.asgi.read_body``).
* **Closing after an early answer.** A response that starts before the request's body
  has fully arrived (413, 404, a 403 for a key, a timeout) ends the connection, and says
  so (``connection: close``, written by ``WorkerCycle``): a client that was not told
  would send its next request on a connection being closed and lose it. The server then
  stops parsing, half-closes its side and reads and discards what the client still
  sends for up to ``LINGER_S``, so that the client reads the answer rather than a reset.
* **Draining.** From SIGTERM on, every response carries ``connection: close``. When the
  worker stops accepting, requests that still arrive on open connections are answered
  (with ``connection: close``); a connection with no request is closed only once it has
  been idle for ``IDLE_GRACE_S``, so that a client in the middle of sending its next
  request is not cut off (``WorkerServer`` drives this).

The answers written here (408, 413's connection end, 414, 431, 503) are transport-level,
like uvicorn's own 400 for an unparsable request: they happen before or outside any
route, so their body is the plain ``{"error": "..."}`` of the V2 and modelport routes.

This relies on uvicorn's protocol internals (``cycle``, ``flow``, ``pipeline``,
``headers``, ``url``, ``timeout_keep_alive_task``, ``STATUS_LINE``);
``pyproject.toml`` pins the uvicorn versions it was written against and
``tests/unit/server/process/test_connection.py`` fails when they change.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import struct
import termios
import weakref
from collections import Counter
from collections.abc import Coroutine
from typing import Any, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from modelport.config import ConnectionSettings
from modelport.server.process.coalescing import CoalescingTransport

LINGER_S = 2.0
# While draining, a connection idle this long is closed; a younger one may be about to
# send its next request.
IDLE_GRACE_S = 1.0

# Where a connection is, for the timeouts: waiting for its first request, idle between
# requests, receiving a header block, or past its headers (the app has the request).
WAITING, IDLE, HEADERS, HANDLED = range(4)


class ConnectionsState(ServerState):
    """uvicorn's state shared by one worker's connections, with our limits, the drain
    flag and counts of the connections closed for a limit or a timeout."""

    def __init__(self, limits: ConnectionSettings) -> None:
        super().__init__()
        self.limits = limits
        self.clock = 0.0  # the loop's time, updated by the server every 0.1 s
        self.draining = False
        self.closed_for: Counter[str] = Counter()
        # Connections accepted whose protocol has no transport yet: over TLS, a handshake
        # under way (the protocol is made at the accept, ``connection_made`` comes after
        # the handshake). Weak: asyncio never tells the protocol of a failed handshake.
        self.handshaking: weakref.WeakSet[WorkerConnection] = weakref.WeakSet()


class RefusedError(Exception):
    """Raised from a parser callback: answer ``status`` and end the connection.

    Control flow inside this module only (it never reaches the app or the user), hence
    not a ``ModelportError``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class WorkerCycle(RequestResponseCycle):
    """uvicorn's request-response cycle; an answer that starts while the request's body
    is still arriving carries ``connection: close`` (module docstring).

    uvicorn closes the transport at the end of a response that says ``connection:
    close``; here the connection lingers instead (``WorkerConnection.on_response_complete``),
    so that the client, still sending, reads the answer rather than a reset.
    """

    answered_early = False

    def send(self, message: Any) -> Coroutine[Any, Any, None]:
        """uvicorn's ``send``; the response's head says ``connection: close`` when the
        request's body has not all arrived."""
        if self.response_started or not self.more_body:
            return super().send(message)  # not awaited here: no extra coroutine per send
        return self._start_early(message)

    async def _start_early(self, message: Any) -> None:
        self.answered_early = True
        self.keep_alive = False  # uvicorn writes the header
        await super().send(message)
        self.keep_alive = True  # uvicorn would close at the response's end: it lingers


class WorkerConnection(HttpToolsProtocol):
    """uvicorn's httptools protocol with timeouts, limits and draining (module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.state = cast(ConnectionsState, server_state)
        self.limits = self.state.limits
        self.phase = WAITING
        self.since = self.state.clock  # loop time the current phase started
        self.state.handshaking.add(self)
        self.closing = False  # answered for good: input is discarded
        self._over_capacity = False
        self._max_headers = self.limits.max_headers
        self._max_header_bytes = self.limits.max_header_bytes
        self._field_bytes = 0  # header fields parsed, for the size limit
        self._raw_bytes = 0  # bytes received while the header block stays incomplete
        self._received = 0  # data chunks received: progress, for the body timeout
        self._seen = 0
        self._stalled_since = 0.0

    # -- connection events -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Track the connection; make room when the worker holds too many."""
        self.state.handshaking.discard(self)
        # A response's headers and body leave in one write (server.process.coalescing).
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))
        self.since = self.state.clock
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        """Feed the parser (uvicorn's, with our refusals); discard input once closing."""
        if self.closing:
            return
        self._unset_keepalive_if_required()
        self._received += 1
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if isinstance(refusal, RefusedError):
                self.refuse(refusal)
            else:
                self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:  # no WebSockets here: served as plain HTTP
            self.logger.warning("Unsupported upgrade request.")
            return
        cycle = self.cycle
        if cycle is not None and cycle.more_body and type(cycle) is RequestResponseCycle:
            # Its body is still to come: the cycle becomes ours, so that an answer that
            # starts before the body has arrived says it closes the connection. Only
            # then: switching its class costs about a microsecond, and a request that
            # arrives whole in one read (most) needs none. The app has not started yet
            # (its task runs after this call), so it gets ``WorkerCycle.send``.
            cycle.__class__ = WorkerCycle
        if self.phase == HEADERS:  # the header block is still incomplete after this chunk
            self._raw_bytes += len(data)
            if self._raw_bytes > self._max_header_bytes:
                self.refuse(self._headers_too_large())

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    # -- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request starts: its header block must be complete within the timeout."""
        super().on_message_begin()
        if self.phase != WAITING:  # a new connection's clock runs from its opening
            self.since = self.state.clock
        self.phase = HEADERS
        self._field_bytes = 0
        self._raw_bytes = 0

    def on_url(self, url: bytes) -> None:
        """uvicorn's, counting the request target against ``max_header_bytes``."""
        self.url += url
        if len(self.url) > self._max_header_bytes:
            raise RefusedError(
                414,
                "uri_too_long",
                f"the request target is longer than {self._max_header_bytes} bytes",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        """uvicorn's, adding up the header fields' bytes (checked when they are complete;
        until then ``data_received`` bounds what an incomplete header block holds)."""
        self._field_bytes += len(name) + len(value)
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace (RFC 9110 5.5)
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        """The request goes to the app, unless its headers are over the limits or the
        worker is over capacity; while draining, its answer closes the connection."""
        self.phase = HANDLED
        count = len(self.headers)
        if count > self._max_headers:
            raise RefusedError(
                431, "too_many_headers", f"more than {self._max_headers} header fields"
            )
        if self._field_bytes + 4 * count + len(self.url) > self._max_header_bytes:
            raise self._headers_too_large()
        if self._over_capacity:
            raise RefusedError(503, "over_capacity", "the server has too many open connections")
        super().on_headers_complete()
        if self.state.draining:
            self.cycle.keep_alive = False

    def _headers_too_large(self) -> RefusedError:
        limit = self._max_header_bytes
        return RefusedError(
            431, "headers_too_large", f"the request line and headers exceed {limit} bytes"
        )

    def on_response_complete(self) -> None:
        """uvicorn's; a connection answered before its request body arrived whole
        closes rather than parsing the rest."""
        cycle = self.cycle
        if type(cycle) is WorkerCycle and cycle.answered_early and not self.transport.is_closing():
            self.server_state.total_requests += 1
            self._linger()
            return
        if self.closing:  # a refused pipelined request follows this answer
            self.server_state.total_requests += 1
            self.transport.close()
            return
        if self.pipeline:  # the next request, already received, starts
            super().on_response_complete()
            return
        super().on_response_complete()
        self.phase = IDLE
        self.since = self.state.clock

    # -- answers and closing -----------------------------------------------------------

    def refuse(self, refusal: RefusedError) -> None:
        """Answer ``refusal`` for the request being received, and end the connection.

        When an earlier (pipelined) request is still being answered, that answer closes
        the connection instead: the client sends the refused request again on a new one.
        """
        self.state.closed_for[refusal.reason] += 1
        self.closing = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            return
        self._answer(refusal)

    def _answer(self, refusal: RefusedError) -> None:
        body = json.dumps({"error": refusal.message}).encode()
        lines = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
        if refusal.status == 503:
            lines.append(b"retry-after: 1\r\n")
        lines.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(lines) + body)
        self._linger()

    def _linger(self) -> None:
        """Half-close after the answer and discard input until the client closes, or
        ``LINGER_S`` passes."""
        self.closing = True
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _make_room(self) -> None:
        """Close the longest-waiting connection without a request at the app, or
        answer this one 503 when there is none."""
        candidates = sorted(
            (
                c
                for c in self.connections
                if c is not self and isinstance(c, WorkerConnection) and c.evictable()
            ),
            key=lambda connection: connection.since,
        )
        for victim in candidates:
            if victim.phase == HEADERS:  # half a request: it gets an answer
                self.state.closed_for["evicted"] += 1
                victim.refuse(
                    RefusedError(503, "evicted", "the server has too many open connections")
                )
                return
            if not unread_bytes(victim.transport):  # else its request is about to be read
                self.state.closed_for["evicted"] += 1
                victim.transport.close()
                return
        self._over_capacity = True

    def evictable(self) -> bool:
        """Whether closing this connection loses no work: it has no request at the app."""
        if self.phase == HANDLED or self.closing or self.transport.is_closing():
            return False
        return self.cycle is None or self.cycle.response_complete

    # -- timeouts and draining, driven by WorkerServer -----------------------------------

    def check_timeouts(self, now: float) -> None:
        """Close or answer this connection if it is past a timeout (called every second)."""
        if self.closing or self.transport.is_closing():
            return
        phase, limits = self.phase, self.limits
        if phase in (WAITING, HEADERS):
            if now - self.since > limits.header_timeout_s:
                self._time_out("header_timeout", answer=phase == HEADERS)
            elif (
                self.state.draining
                and phase == WAITING
                and now - self.since >= IDLE_GRACE_S
                and not unread_bytes(self.transport)
            ):
                self.transport.close()
        elif phase == IDLE:
            idle = now - self.since >= IDLE_GRACE_S
            if self.state.draining and idle and not unread_bytes(self.transport):
                self.transport.close()
        else:
            self._check_body(now)

    def _check_body(self, now: float) -> None:
        cycle = self.cycle
        waiting = cycle.more_body and not cycle.response_complete and not self.flow.read_paused
        if not waiting or self._received != self._seen:
            self._seen = self._received
            self._stalled_since = now
        elif now - self._stalled_since > self.limits.body_timeout_s:
            self._time_out("body_timeout", answer=True)

    def _time_out(self, reason: str, *, answer: bool) -> None:
        if not answer:
            self.state.closed_for[reason] += 1
            self.transport.close()
        elif reason == "header_timeout":
            seconds = self.limits.header_timeout_s
            self.refuse(
                RefusedError(408, reason, f"no complete request headers within {seconds:g} s")
            )
        else:
            self._abandon_body()

    def _abandon_body(self) -> None:
        """The body stopped arriving: the app's ``receive()`` reports a disconnect, and
        the client gets 408 (or, if its response already started, the connection ends)."""
        self.state.closed_for["body_timeout"] += 1
        self.closing = True
        cycle = self.cycle
        cycle.disconnected = True
        cycle.message_event.set()
        if cycle.response_started:
            self.transport.close()
            return
        message = f"no more of the request body within {self.limits.body_timeout_s:g} s"
        self._answer(RefusedError(408, "body_timeout", message))

    def begin_drain(self) -> None:
        """The worker stops: the answer to the request under way closes the connection."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.keep_alive = False
        for queued, _ in self.pipeline:
            queued.keep_alive = False

    def in_progress(self) -> bool:
        """Whether closing now would lose a request: one is being received or answered."""
        return self.phase in (HEADERS, HANDLED) and not self.closing


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """How many received bytes wait unread in the connection's socket (0 if unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        count = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", count)[0])
