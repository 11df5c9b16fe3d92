"""The first code every HTTP request meets, in one ASGI callable.

It gives the request its id (``server.http.request_ids``) and returns it in the
response's ``X-Request-ID`` header; asks the connection recycler whether this response
closes its keep-alive connection (``server.http.connections``, with several workers);
routes a path without parameters (``/invocations``, health, metrics) with one dict
look-up and everything else, and the lifespan, through the router, which tries each of
its routes' patterns in turn; behind a trusted proxy, takes the client's address and
scheme from its ``X-Forwarded-*`` headers (``server.http.forwarded``); and writes the
access log when it is on. These were four nested middlewares: one layer costs a
coroutine frame and a ``send`` wrapper per request.

Every answer to a request other than POST also carries ``SECURITY_HEADERS``, one
constant tuple: what a browser could open, frame or cache (metadata, listings, errors of
GET) is data for programs, so browsers are told not to sniff, frame, cache or run it. A
POST's answer (an inference, labels, a change) gets none: no browser navigates to it or
loads it as a script or frame (those are GETs), and no cache stores it without explicit
freshness headers (RFC 9111); the two headers cost the inference path ~8% of its
throughput in ``benchmarks/serve.py`` (uvicorn checks each header of each answer).
An app mounted under a prefix (the control plane's dashboard at ``/ui/``) brings its
own set instead, on every method: its pages load their stylesheet and post forms. CORS is
off: no ``Access-Control-*`` header is ever sent and a preflight (``OPTIONS``) gets 405
(browser pages on other origins reach the API through a proxy that adds CORS).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from modelport.server.http.asgi import (
    REQUEST_ID_KEY,
    ASGIApp,
    Headers,
    Message,
    Receive,
    Scope,
    Send,
)
from modelport.server.http.connections import ConnectionRecycler
from modelport.server.http.forwarded import TrustedProxies
from modelport.server.http.request_ids import RequestIds

logger = logging.getLogger("modelport.access")

_CLOSE = (b"connection", b"close")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
POST_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = ()


class Front:
    """The worker's ASGI application: request ids, dispatch, recycling, forwarded
    headers, access log."""

    def __init__(
        self,
        static: Mapping[str, ASGIApp],
        router: ASGIApp,
        *,
        recycler: ConnectionRecycler | None,
        access_log: bool,
        proxies: TrustedProxies | None = None,
        prefixed: tuple[tuple[str, Headers], ...] = (),
    ) -> None:
        self._static = static
        # (path prefix, hardening headers) of the mounted apps, tried in order; empty
        # on a serving server, whose requests then pay nothing for it.
        self._prefixed = prefixed
        self._proxies = proxies
        self._router = router
        self._recycler = recycler
        self._access_log = access_log
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return
        request_id = self._ids.of(scope)
        scope[REQUEST_ID_KEY] = request_id
        added = [(b"x-request-id", request_id.encode())]
        recycler = self._recycler
        if recycler is not None and recycler.closes(scope):
            added.append(_CLOSE)
        if self._proxies is not None:  # after the recycler, which keys on the real peer
            self._proxies.apply(scope)
        started = time.perf_counter()
        status = 0
        hardening: Headers = (
            POST_SECURITY_HEADERS if scope["method"] == "POST" else SECURITY_HEADERS
        )
        if self._prefixed:
            hardening = _prefixed_hardening(self._prefixed, scope["path"], hardening)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                if _CLOSE in added:  # ours replaces whatever the route said
                    headers = [h for h in headers if h[0].lower() != b"connection"]
                message["headers"] = [*headers, *added, *hardening]
            await send(message)

        app = self._static.get(scope["path"]) or self._router
        try:
            await app(scope, receive, send_with_headers)
        finally:
            if recycler is not None:
                recycler.finished(scope)
            if self._access_log:
                _log_access(scope, request_id, status, time.perf_counter() - started)


def _prefixed_hardening(
    prefixed: tuple[tuple[str, Headers], ...], path: str, default: Headers
) -> Headers:
    """The hardening headers of the mounted app ``path`` is under (on every method: its
    pages answer POSTs too), else ``default``."""
    for prefix, headers in prefixed:
        if path.startswith(prefix):
            return headers
    return default


def _log_access(scope: Scope, request_id: str, status: int, seconds: float) -> None:
    logger.info(
        "%s %s %s",
        scope["method"],
        scope["path"],
        status,
        extra={
            "request_id": request_id,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if (client := scope.get("client")) else None,
        },
    )
