"""A tiny raw-ASGI server app for the supervisor's end-to-end tests.

Worker processes import it by name (``tiny_app:build``), so the tests put this
directory on the workers' ``PYTHONPATH``. Routes:

* ``/ready``: 200, or 503 once ``begin_drain`` was called.
* ``/pid``: the worker's process id.
* ``/slow?s=2``: sleeps (asynchronously), then ``{"pid": ..., "draining": ...}``.
* ``/crash``: ``os._exit(1)`` without answering.
* ``/body``: reads the request body as the inference routes do (``read_body``, up to
  ``serve.max_body_bytes``) and answers its length, or the error's status.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.server.http.asgi import read_body
from modelport.server.http.connections import recycle_connections
from modelport.server.http.errors import status_of
from modelport.server.process.spec import ASGIApp, Receive, Scope, Send
from modelport.serving.sources import ModelSource


class TinyApp:
    """A ``ServerApp`` with no models."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int,
        on_ready: Callable[[], None],
        on_failed: Callable[[str], None],
        failure: str | None = None,
    ) -> None:
        self.draining = False
        self._on_ready = on_ready
        self._on_failed = on_failed
        self._failure = failure
        self._max_body_bytes = settings.serve.max_body_bytes
        self.asgi: ASGIApp = recycle_connections(
            self._app, workers=workers, max_requests=settings.serve.max_requests_per_connection
        )

    def begin_drain(self) -> None:
        self.draining = True

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope["path"]
        if path == "/ready":
            await _respond(send, 503 if self.draining else 200, {"ready": not self.draining})
        elif path == "/pid":
            await _respond(send, 200, os.getpid())
        elif path == "/slow":
            seconds = float(parse_qs(scope["query_string"].decode()).get("s", ["1"])[0])
            await asyncio.sleep(seconds)
            await _respond(send, 200, {"pid": os.getpid(), "draining": self.draining})
        elif path == "/crash":
            os._exit(1)
        elif path == "/body":
            try:
                body = await read_body(scope, receive, self._max_body_bytes)
            except ModelportError as exc:
                await _respond(send, status_of(exc)[0], {"error": exc.message})
                return
            await _respond(send, 200, len(body))
        else:
            await _respond(send, 404, {"error": f"no route for {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._failure is not None:
                    self._on_failed(self._failure)
                    await send({"type": "lifespan.startup.failed", "message": self._failure})
                    return
                self._on_ready()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build(
    settings: Settings,
    sources: Sequence[ModelSource],
    *,
    worker_index: int,
    workers: int,
    on_ready: Callable[[], None],
    on_failed: Callable[[str], None],
) -> TinyApp:
    """The factory the tests name with ``--app-factory tiny_app:build``."""
    return TinyApp(settings, workers=workers, on_ready=on_ready, on_failed=on_failed)


def build_failing(
    settings: Settings,
    sources: Sequence[ModelSource],
    *,
    worker_index: int,
    workers: int,
    on_ready: Callable[[], None],
    on_failed: Callable[[str], None],
) -> TinyApp:
    """A factory whose app cannot load its model."""
    return TinyApp(
        settings,
        workers=workers,
        on_ready=on_ready,
        on_failed=on_failed,
        failure="model 'ghost' does not exist",
    )
