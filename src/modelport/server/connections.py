"""Spreading requests, not just connections, over the worker processes.

All workers accept on one listening socket that the supervisor binds and keeps open.
The kernel hands each new connection to whichever worker calls ``accept`` first, and
libuv accepts every pending connection in one go: when a load generator opens 64
keep-alive connections at once, one worker may take most of them and keep them for
the whole run while the others idle. Balancing connections is therefore not enough.

``ConnectionRecycler`` counts the requests of each keep-alive connection and adds
``connection: close`` to the response that reaches ``max_requests``. uvicorn's
httptools protocol honours the header (it clears ``keep_alive`` and closes the
transport once the body is sent; pipelined requests already received on that
connection are dropped, which HTTP/1.1 allows after ``connection: close``), the
client reconnects, and the new connection goes to whichever worker is free to accept
it first: a busy worker is less often waiting in ``epoll``, so over time connections
drift from loaded workers to idle ones, and no worker keeps a connection for good. The
cost is one TCP handshake every ``max_requests`` requests (100 by default).

Why not one ``SO_REUSEPORT`` socket per worker, which the kernel balances by a hash of
the peer address? Connections queued on a worker's own socket are reset when that
worker dies, and while it restarts its share of new connections either fails (socket
closed) or waits for the replacement (socket kept open by the supervisor), possibly
for many seconds if the model is slow to load or the worker keeps crashing. With the
shared socket, a crash loses only the requests the dead worker was processing and
the others keep answering everything else. ``SO_REUSEPORT`` would also let another
process of the same user bind the port and take a share of the traffic.

Counting is per ``scope["client"]`` (peer host and port, which identify a connection
while it is open). Memory is bounded: the least recently used entries are forgotten
beyond ``max_tracked``; a forgotten connection simply starts counting again. Only
HTTP/1.1 is affected (``connection`` is not a header in HTTP/2; HTTP/1.0 closes
anyway). uvicorn must not rewrite ``client`` from forwarded headers
(``proxy_headers=False`` in the worker), or all connections of a proxy would share
one count.
"""

from __future__ import annotations

from modelport.server.process import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_TRACKED = 10_000


class ConnectionRecycler:
    """ASGI middleware: close each keep-alive connection after ``max_requests`` requests."""

    def __init__(
        self, app: ASGIApp, max_requests: int, *, max_tracked: int = DEFAULT_MAX_TRACKED
    ) -> None:
        if max_requests < 1 or max_tracked < 1:
            raise ValueError("max_requests and max_tracked must be at least 1")
        self.app = app
        self.max_requests = max_requests
        self.max_tracked = max_tracked
        self._counts: dict[tuple[str, int], int] = {}  # insertion order = recency

    @property
    def tracked(self) -> int:
        """How many connections are being counted."""
        return len(self._counts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, closing its connection when it is the last one allowed."""
        if scope["type"] != "http" or scope.get("http_version") != "1.1":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if not client or not self._is_last(client[0], client[1]):
            await self.app(scope, receive, send)
            return

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

        await self.app(scope, receive, send_closing)

    def _is_last(self, host: str, port: int) -> bool:
        key = (host, port)
        count = self._counts.pop(key, 0) + 1
        if count >= self.max_requests:
            return True  # the connection closes: stop tracking it
        self._counts[key] = count
        if len(self._counts) > self.max_tracked:
            del self._counts[next(iter(self._counts))]
        return False


def recycle_connections(app: ASGIApp, *, workers: int, max_requests: int) -> ASGIApp:
    """``app`` wrapped in a ``ConnectionRecycler`` when several workers share the port."""
    if workers <= 1:
        return app
    return ConnectionRecycler(app, max_requests)
