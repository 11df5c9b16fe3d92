"""The ASGI application of one worker: routes, middleware, start-up and shutdown.

``ROUTES`` is the route inventory; the OpenAPI document is checked against it in the
tests, so no route can exist undocumented.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson
from starlette.routing import BaseRoute, Mount, Route, Router

from modelport.errors import ModelportError
from modelport.server.http import (
    alerts,
    deployment_results,
    deployments,
    feedback,
    keys,
    mlflow,
    monitoring,
    rest,
    triton,
    v2,
)
from modelport.server.http.asgi import ASGIApp, Headers, Receive, Scope, Send, respond
from modelport.server.http.connections import ConnectionRecycler
from modelport.server.http.endpoint import Endpoint, ServerContext
from modelport.server.http.forwarded import TrustedProxies
from modelport.server.http.front import Front
from modelport.server.http.guard import Guard, Guarded
from modelport.serving.served import describe_failure
from modelport.serving.target import InferenceRequest

logger = logging.getLogger("modelport.server")

GET, POST, DELETE = ("GET",), ("POST",), ("DELETE",)
METRICS_FLUSH_S = 1.0
RouteTable = tuple[tuple[str, tuple[str, ...], type[Endpoint]], ...]
ROUTES: RouteTable = (
    ("/v2", GET, v2.ServerMetadata),
    ("/v2/health/live", GET, v2.ServerLive),
    ("/v2/health/ready", GET, v2.ServerReady),
    ("/v2/models", GET, v2.ModelList),
    ("/v2/models/{name}", GET, v2.ModelMetadata),
    ("/v2/models/{name}/ready", GET, v2.ModelReady),
    ("/v2/models/{name}/infer", POST, v2.Infer),
    ("/v2/models/{name}/versions/{version}", GET, v2.ModelMetadata),
    ("/v2/models/{name}/versions/{version}/ready", GET, v2.ModelReady),
    ("/v2/models/{name}/versions/{version}/infer", POST, v2.Infer),
    ("/invocations", POST, mlflow.Invocations),
    ("/models/{name}/invocations", POST, mlflow.Invocations),
    ("/ping", GET, mlflow.Ping),
    ("/health", GET, mlflow.Ping),
    ("/version", GET, mlflow.Version),
    ("/api/models", GET, rest.ApiModels),
    ("/api/models/{name}", GET, rest.ApiModel),
    ("/api/monitoring/{model}/alerts", GET, alerts.ApiAlerts),
    ("/api/openapi.json", GET, rest.OpenApi),
    ("/api/monitoring/{model}/drift", GET, monitoring.ApiDrift),
    ("/metrics", GET, rest.Metrics),
    ("/api/feedback", POST, feedback.Feedback),
    ("/api/monitoring/{model}/performance", GET, feedback.Performance),
    ("/api/deployments", GET, deployments.ApiDeployments),
    ("/api/deployments/{name}", ("GET", "PUT", "DELETE"), deployments.ApiDeployment),
    ("/api/deployments/{name}/history", GET, deployments.ApiDeploymentHistory),
    ("/api/deployments/{name}/canary", POST, deployments.ApiCanary),
    ("/api/deployments/{name}/ab", POST, deployments.ApiAb),
    ("/api/deployments/{name}/shadow", POST, deployments.ApiShadow),
    ("/api/deployments/{name}/weights", POST, deployments.ApiWeights),
    ("/api/deployments/{name}/promote", POST, deployments.ApiPromote),
    ("/api/deployments/{name}/rollback", POST, deployments.ApiRollback),
    ("/api/deployments/{name}/arms/{arm}", DELETE, deployments.ApiDeploymentArm),
    ("/api/deployments/{name}/status", GET, deployment_results.ApiDeploymentStatus),
    ("/api/deployments/{name}/results", GET, deployment_results.ApiDeploymentResults),
    ("/api/deployments/{name}/compare", GET, deployment_results.ApiDeploymentCompare),
    # Triton's extensions come last: the router tries patterns in order, and inference
    # requests should not pay for matching these first.
    ("/v2/models/stats", GET, triton.ModelStatistics),
    ("/v2/repository/index", POST, triton.RepositoryIndex),
    ("/v2/models/{name}/config", GET, triton.ModelConfig),
    ("/v2/models/{name}/stats", GET, triton.ModelStatistics),
    ("/v2/models/{name}/versions/{version}/config", GET, triton.ModelConfig),
    ("/v2/models/{name}/versions/{version}/stats", GET, triton.ModelStatistics),
    ("/v2/repository/models/{name}/load", POST, triton.RepositoryControl),
    ("/v2/repository/models/{name}/unload", POST, triton.RepositoryControl),
    ("/api", GET, keys.ServerInfo),
    ("/api/keys", ("GET", "POST"), keys.ApiKeys),
    ("/api/keys/{key_id}", DELETE, keys.ApiKeyItem),
)


class _JsonRoute(Route):
    """A route whose 405 answer is JSON like every other error."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            # A key that may not use this route learns nothing more, on any method.
            refusal = (
                await self.app.check(scope, admit=False) if isinstance(self.app, Guarded) else None
            )
            if refusal is not None:
                await respond(send, refusal.status, refusal.body, headers=refusal.headers)
                return
            allowed = ", ".join(sorted(self.methods))
            body = orjson.dumps({"error": f"{scope['method']} is not allowed here; use {allowed}"})
            await respond(send, 405, body, headers=((b"allow", allowed.encode()),))
            return
        await self.app(scope, receive, send)


class MountedApp:
    """An ASGI application served under a path prefix (the control plane's dashboard at
    ``/ui``), with the hardening headers its answers get instead of the API's: a page
    loads its own stylesheet and script, which the API's ``default-src 'none'`` forbids."""

    def __init__(self, path: str, app: ASGIApp, hardening: Headers) -> None:
        self.path = path.rstrip("/")
        self.app = app
        self.hardening = hardening


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = orjson.dumps({"error": f"no route for {scope['method']} {scope['path']}"})
    await respond(send, 404, body)


def _redirect_to(location: str) -> ASGIApp:
    """An ASGI app answering every request with a redirect to ``location``."""

    async def redirect(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 307, b"", headers=((b"location", location.encode()),))

    return redirect


class ServerApp:
    """One worker's application: ``asgi`` serves, ``begin_drain`` flips readiness.

    ``mounts`` are apps served under a path prefix after the route table (the control
    plane's dashboard); each prefix's bare path redirects to the prefix with a slash."""

    def __init__(
        self,
        context: ServerContext,
        *,
        workers: int,
        on_ready: Callable[[], None],
        on_failed: Callable[[str], None],
        route_table: RouteTable = ROUTES,
        title: str = "modelport inference server",
        mounts: Sequence[MountedApp] = (),
    ) -> None:
        self.context = context
        context.routes = route_table
        context.title = title
        self._on_ready = on_ready
        self._on_failed = on_failed
        guard = Guard(context.keys, context.admission)
        routes = [
            _JsonRoute(path, endpoint=guard.wrap(cls(context)), methods=list(methods))
            for path, methods, cls in route_table
        ]
        static: dict[str, ASGIApp] = {
            route.path: route.handle for route in routes if "{" not in route.path
        }
        # A mounted app owns its prefix; its bare path (``/ui``) redirects to ``/ui/``.
        mounted: list[BaseRoute] = [Mount(m.path, app=m.app) for m in mounts]
        for m in mounts:
            static[m.path] = _redirect_to(m.path + "/")
        # No trailing-slash redirects: a path answers as documented or not at all.
        router = Router(
            routes=[*routes, *mounted],
            default=_not_found,
            lifespan=self._lifespan,
            redirect_slashes=False,
        )
        settings = context.settings
        # Front asks the recycler per request (closes/finished) rather than nesting it
        # as a middleware; the router is only its app for that standalone use.
        recycler = (
            ConnectionRecycler(router, settings.max_requests_per_connection)
            if workers > 1
            else None
        )
        proxies = TrustedProxies(settings.forwarded_allow_ips) if settings.behind_proxy else None
        self.asgi = Front(
            static,
            router,
            recycler=recycler,
            access_log=settings.access_log,
            proxies=proxies,
            prefixed=tuple((m.path + "/", m.hardening) for m in mounts),
        )

    def begin_drain(self) -> None:
        """Readiness answers 503 from now on; requests in flight finish."""
        self.context.runtime.begin_drain()

    def take_shadow_copy(self, deployment: str, arm: str, request: InferenceRequest) -> bool:
        """Answer a shadow copy a serving worker sent (``ModelRuntime.take_shadow_copy``)."""
        return self.context.runtime.take_shadow_copy(deployment, arm, request)

    @property
    def shadow_backlog(self) -> int:
        """Shadow copies taken and not answered yet."""
        return self.context.runtime.shadow_backlog

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        runtime = self.context.runtime
        try:
            await runtime.start()
        except Exception as exc:
            message = describe_failure(exc)
            if not isinstance(exc, ModelportError):
                logger.exception("cannot start serving")
            self._on_failed(message)
            await runtime.close()
            raise
        # Everything loaded so far (libraries, models) lives as long as the worker: keep it
        # out of the cyclic garbage collector, whose full passes over those hundreds of
        # thousands of objects would otherwise stall requests now and then. (No collection
        # first: it would add ~0.2 s to the start for a few kilobytes of start-up garbage.)
        gc.freeze()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._flush_metrics(), name="metrics")]
        if self.context.log_maintenance is not None:
            tasks.append(loop.create_task(self._maintain_log(), name="prediction-log"))
        gauges = self.context.live_gauges
        if gauges is not None:
            gauges.start()
        key_book = self.context.keys
        if key_book is not None:
            key_book.start()
        connect = getattr(self.context.admission, "connect", None)
        if connect is not None:
            await connect()
        self._on_ready()
        try:
            yield
        finally:
            if key_book is not None:
                key_book.stop()
            if gauges is not None:
                gauges.stop()
            try:
                await runtime.close()
            finally:  # whatever happened, what was answered is written
                for task in tasks:
                    task.cancel()
                await self._close_log()
                await self._close_registry()
                await self._close_admission()
                self.context.metrics.flush()
                if self.context.drift is not None:
                    self.context.drift.close()

    async def _close_admission(self) -> None:
        """Close the rate limiter's connections (to Redis) if it has any."""
        close = getattr(self.context.admission, "aclose", None)
        if close is not None:
            await close()

    async def _flush_metrics(self) -> None:
        """Write what the request path recorded (``monitoring.buffer``), every second."""
        metrics = self.context.metrics
        log = self.context.prediction_log
        while True:
            await asyncio.sleep(METRICS_FLUSH_S)
            if log is not None:
                metrics.prediction_log_queue_rows.set(log.queued_rows)
            metrics.flush()

    async def _close_log(self) -> None:
        """Write every queued prediction (the requests have all been answered by now)."""
        log = self.context.prediction_log
        if log is not None:
            await asyncio.to_thread(log.close)
            self.context.metrics.prediction_log_queue_rows.set(0)

    async def _close_registry(self) -> None:
        """Close the REST routes' registry if they built one: the events of its last
        writes reach their webhooks (a bounded wait) before the worker exits."""
        close = getattr(self.context.registry, "close", None)
        if callable(close):
            await asyncio.to_thread(close)

    async def _maintain_log(self) -> None:
        """Compaction and retention of the prediction log, in a thread, every interval;
        the first pass at a random point of the first interval, so that replicas that
        start together do not compact the same days at the same moment."""
        maintenance = self.context.log_maintenance
        assert maintenance is not None
        await asyncio.sleep(random.uniform(0, maintenance.interval_s))  # noqa: S311 (jitter)
        while True:
            try:
                await asyncio.to_thread(maintenance.run_once)
            except Exception:  # the log's upkeep must never stop the server
                logger.exception("prediction log maintenance failed; retrying next interval")
            await asyncio.sleep(maintenance.interval_s)
