"""What every route shares: the server context, replies, error answers and metrics.

An ``Endpoint`` is a plain ASGI callable: ``handle`` returns a ``Reply`` or raises; the
error is turned into the status and body its dialect's clients expect. Inference
endpoints (``protocol`` set) also count the request, its latency and its rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from modelport.config import ServeSettings
from modelport.errors import ModelportError
from modelport.monitoring.metrics import UNKNOWN_MODEL, ServerMetrics
from modelport.server.http.asgi import JSON, REQUEST_ID_KEY, Headers, Receive, Scope, Send, respond
from modelport.server.http.errors import ErrorAnswer, mlflow_error, v2_error
from modelport.server.http.v2_codec import V2Limits
from modelport.serving.runtime import ModelRuntime

logger = logging.getLogger("modelport.server")


@dataclass
class ServerContext:
    """The state the routes of one worker share."""

    runtime: ModelRuntime
    settings: ServeSettings
    metrics: ServerMetrics
    v2_limits: V2Limits
    multiprocess_dir: str | None = None

    def deadline(self, started: float, client_timeout_s: float | None) -> float:
        """The request's deadline on ``time.monotonic``: the server's timeout, shortened
        (never lengthened) by the client's."""
        timeout = self.settings.request_timeout_s
        if client_timeout_s is not None and client_timeout_s > 0:
            timeout = min(timeout, client_timeout_s)
        return started + timeout


@dataclass(frozen=True)
class Reply:
    """A complete response."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = ()

    @classmethod
    def json(cls, data: Any, *, status: int = 200, retry_after: int | None = None) -> Reply:
        """A JSON reply (with ``Retry-After`` when given)."""
        headers = ((b"retry-after", str(retry_after).encode()),) if retry_after else ()
        return cls(status, orjson.dumps(data), JSON, headers)


class Endpoint:
    """Base of every route."""

    protocol: ClassVar[str | None] = None
    dialect: ClassVar[str] = "v2"

    def __init__(self, context: ServerContext) -> None:
        self.context = context

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        """Answer one request."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        in_flight = self.context.metrics.in_flight if self.protocol else None
        if in_flight is not None:
            in_flight.inc()
        try:
            reply = await self.handle(scope, receive)
        except Exception as exc:
            reply = self._error_reply(scope, exc)
        finally:
            if in_flight is not None:
                in_flight.dec()
        await respond(send, reply.status, reply.body, reply.content_type, reply.headers)
        if self.protocol is not None:
            self._count(scope, reply.status, time.perf_counter() - started)

    def _error_reply(self, scope: Scope, exc: Exception) -> Reply:
        answer: ErrorAnswer = mlflow_error(exc) if self.dialect == "mlflow" else v2_error(exc)
        if not isinstance(exc, ModelportError):
            logger.exception(
                "unexpected error answering %s %s",
                scope.get("method"),
                scope.get("path"),
                extra={"request_id": scope.get(REQUEST_ID_KEY)},
            )
        return Reply(answer.status, answer.body, JSON, answer.headers)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        metrics = self.context.metrics
        served = scope.get("modelport.model")
        model = served.name if served is not None else UNKNOWN_MODEL
        version = served.version_label if served is not None else ""
        protocol = self.protocol or ""
        metrics.requests.labels(model, version, protocol, str(status)).inc()
        metrics.request_seconds.labels(model, protocol).observe(seconds)
        rows = scope.get("modelport.rows")
        if rows and status == 200:
            metrics.predictions.labels(model, version).inc(rows)
