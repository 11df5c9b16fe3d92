"""Per-request context: the request id every response and log line carries, and the
optional access log.

The id comes from the client's ``X-Request-ID`` header when it is a sane token (up to
128 printable ASCII characters), else it is generated; either way it is returned in
the response's ``X-Request-ID`` header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from modelport.server.http.asgi import REQUEST_ID_KEY, Message, Receive, Scope, Send, header

logger = logging.getLogger("modelport.access")

_ACCEPTED_ID = re.compile(r"[\x21-\x7e]{1,128}")


class RequestContext:
    """ASGI middleware that assigns request ids and writes the access log."""

    def __init__(self, app: object, *, access_log: bool) -> None:
        self._app = app
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)  # type: ignore[operator]
            return
        given = header(scope, b"x-request-id")
        request_id = given if given and _ACCEPTED_ID.fullmatch(given) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id
        encoded = request_id.encode()
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", encoded)]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)  # type: ignore[operator]
        finally:
            if self._access_log:
                logger.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    },
                )
