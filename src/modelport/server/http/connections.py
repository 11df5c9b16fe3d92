"""Spreading requests, not just connections, over the worker processes.

Each worker accepts on a socket of its own, and the kernel places every new connection
on one of them at random (``modelport.server.process.listeners``). A keep-alive connection
stays where it was placed, though: a load generator's 8 connections landed 8 to 0 on
2 workers for seconds at a time, one worker busy and the other idle, and a real client
pool can do the same. Balancing connections once is therefore not enough.

``ConnectionRecycler`` adds ``connection: close`` to a response, and the client's next
request opens a new connection that the kernel places again, in two cases:

* the connection reached ``max_requests`` requests (100 by default), so that no client
  stays on one worker for good;
* the worker is busy, that is other requests are in flight while this one starts, and
  it has not closed a connection for being busy in the last ``busy_interval_s``
  (0.1 s). A worker holding too many connections sheds one every 0.1 s, and each lands
  elsewhere with probability (N-1)/N, until the load evens out. Workers that are all
  busy shed 10 connections a second each, which costs one TCP handshake per
  connection and nothing per request.

uvicorn's httptools protocol honours the header (it clears ``keep_alive`` and closes
the transport once the body is sent; pipelined requests already received on that
connection are dropped, which HTTP/1.1 allows after ``connection: close``).

Counting is per ``scope["client"]`` (peer host and port, which identify a connection
while it is open). Memory is bounded: the least recently used entries are forgotten
beyond ``max_tracked``; a forgotten connection simply starts counting again. Only
HTTP/1.1 is affected (``connection`` is not a header in HTTP/2; HTTP/1.0 closes
anyway). uvicorn must not rewrite ``client`` from forwarded headers
(``proxy_headers=False`` in the worker), or all connections of a proxy would share
one count.
"""

from __future__ import annotations

import time

from modelport.server.http.asgi import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_TRACKED = 10_000
DEFAULT_BUSY_INTERVAL_S = 0.1


class ConnectionRecycler:
    """ASGI middleware: close a keep-alive connection after ``max_requests`` requests,
    and one connection per ``busy_interval_s`` while the worker is busy."""

    def __init__(
        self,
        app: ASGIApp,
        max_requests: int,
        *,
        max_tracked: int = DEFAULT_MAX_TRACKED,
        busy_interval_s: float = DEFAULT_BUSY_INTERVAL_S,
    ) -> None:
        if max_requests < 1 or max_tracked < 1:
            raise ValueError("max_requests and max_tracked must be at least 1")
        self.app = app
        self.max_requests = max_requests
        self.max_tracked = max_tracked
        self.busy_interval_s = busy_interval_s
        self._counts: dict[tuple[str, int], int] = {}  # insertion order = recency
        self._in_flight = 0
        self._last_busy_close = float("-inf")

    @property
    def tracked(self) -> int:
        """How many connections are being counted."""
        return len(self._counts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, closing its connection when it is the last one allowed or
        the worker sheds a connection for being busy."""
        closing = self.closes(scope)
        try:
            await self.app(scope, receive, _closing(send) if closing else send)
        finally:
            self.finished(scope)

    def closes(self, scope: Scope) -> bool:
        """Whether the answer to this request (which is now in flight) closes its
        connection; call ``finished`` when it is answered."""
        if scope["type"] != "http" or scope.get("http_version") != "1.1":
            return False
        client = scope.get("client")
        closing = client is not None and self._closes(client[0], client[1])
        self._in_flight += 1  # after: the request itself does not make the worker busy
        return closing

    def finished(self, scope: Scope) -> None:
        """The request counted by ``closes`` is answered."""
        if scope["type"] == "http" and scope.get("http_version") == "1.1":
            self._in_flight -= 1

    def _closes(self, host: str, port: int) -> bool:
        if self._is_last(host, port):
            return True
        if self._in_flight == 0:
            return False
        now = time.monotonic()
        if now - self._last_busy_close < self.busy_interval_s:
            return False
        self._last_busy_close = now
        self._counts.pop((host, port), None)  # the connection closes: stop tracking it
        return True

    def _is_last(self, host: str, port: int) -> bool:
        key = (host, port)
        count = self._counts.pop(key, 0) + 1
        if count >= self.max_requests:
            return True  # the connection closes: stop tracking it
        self._counts[key] = count
        if len(self._counts) > self.max_tracked:
            del self._counts[next(iter(self._counts))]
        return False


def _closing(send: Send) -> Send:
    """``send``, adding ``connection: close`` to the response's headers."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (name, value)
                for name, value in message.get("headers", ())
                if name.lower() != b"connection"
            ]
            headers.append((b"connection", b"close"))
            message = {**message, "headers": headers}
        await send(message)

    return send_closing


def recycle_connections(app: ASGIApp, *, workers: int, max_requests: int) -> ASGIApp:
    """``app`` wrapped in a ``ConnectionRecycler`` when several workers share the port."""
    if workers <= 1:
        return app
    return ConnectionRecycler(app, max_requests)
