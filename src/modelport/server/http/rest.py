"""modelport's own REST routes: the served models, their state and signature, metrics.

Their bodies are described in ``server.http.rest_schemas``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson

from modelport.domain.keys import METRICS
from modelport.errors import ModelNotFoundError
from modelport.monitoring.drift_live import DriftCollector
from modelport.monitoring.metrics import render
from modelport.server.http.access import ANY_KEY, OPEN, Access, visible
from modelport.server.http.asgi import Receive, Scope, header
from modelport.server.http.endpoint import Endpoint, Reply, ServerContext
from modelport.server.http.openapi import openapi_document
from modelport.serving.route import Route
from modelport.serving.runtime import ModelRuntime


def _summary(route: Route) -> dict[str, Any]:
    served = route.current
    state = "ready" if served is not None else ("failed" if route.error else "loading")
    section = served.loaded.manifest.acceleration if served is not None else None
    return {
        "name": route.source.name,
        "source": route.source.describe() if route.source.ref else "package",
        "version": served.version if served is not None else None,
        "wanted_version": route.wanted_version,
        "stale": route.stale.to_dict() if route.stale is not None else None,
        "state": state,
        "runtime": served.runtime if served is not None else None,
        "acceleration": section.outcome() if section is not None else None,
        "error": route.error,
        "deployment": _deployment(route),
    }


def _deployment(route: Route) -> dict[str, Any] | None:
    deployment = route.deployment
    if deployment is None:
        return None
    spec = deployment.spec_dict()
    return {
        "name": deployment.name,
        "revision": deployment.revision,
        "sticky": spec["sticky"],
        "arms": spec["arms"],
    }


def _registry(runtime: ModelRuntime) -> dict[str, Any]:
    reachable = runtime.registry_reachable
    since = runtime.registry_unreachable_since
    return {
        "followed": reachable is not None,
        "reachable": reachable,
        "unreachable_since": since.isoformat(timespec="seconds").replace("+00:00", "Z")
        if since is not None
        else None,
        "error": runtime.registry_error,
    }


class ApiModels(Endpoint):
    """GET /api/models."""

    access = Access(("read",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        runtime = self.context.runtime
        readable = set(visible(scope, ("read",), [r.source.name for r in runtime.routes()]))
        models = [_summary(route) for route in runtime.routes() if route.source.name in readable]
        return Reply.json({"models": models, "registry": _registry(runtime)})


class ApiModel(Endpoint):
    """GET /api/models/{name}."""

    access = Access(("read",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        route = next((r for r in self.context.runtime.routes() if r.source.name == name), None)
        if route is None:
            raise ModelNotFoundError(f"model {name!r} is not served here", model=name)
        detail: dict[str, Any] = {**_summary(route), "flavor": None, "inputs": [], "outputs": []}
        detail["signature"] = None
        served = route.current
        if served is not None:
            signature = served.loaded.signature
            detail.update(
                flavor=served.loaded.flavor,
                inputs=[spec.to_dict() for spec in served.io.inputs],
                outputs=[spec.to_dict() for spec in served.io.outputs],
                signature=signature.to_dict() if signature is not None else None,
            )
        return Reply.json(detail)


class OpenApi(Endpoint):
    """GET /api/openapi.json."""

    access = ANY_KEY

    def __init__(self, context: ServerContext) -> None:
        super().__init__(context)
        self._document: bytes | None = None

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        if self._document is None:  # the same for the life of the worker
            document = openapi_document(self.context.routes, title=self.context.title)
            self._document = orjson.dumps(document)
        return Reply(200, self._document)


class Metrics(Endpoint):
    """GET /metrics: Prometheus text format (OpenMetrics when the scraper asks for it)."""

    access = Access((METRICS,))

    def __init__(self, context: ServerContext) -> None:
        super().__init__(context)
        if context.metrics_public:  # [security] metrics_public: for scrapers without keys
            self.access = OPEN

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        context = self.context
        context.metrics.flush()  # this worker's latest; the others flush every second
        scrape = functools.partial(
            render, context.metrics.registry, context.multiprocess_dir, header(scope, b"accept")
        )
        live = context.metrics.live_collector
        if context.drift is None:
            body, content_type = scrape([live])
        else:
            # The live drift gauges merge every worker's sketch and run the tests
            # (milliseconds): in a thread, not on the event loop.
            drift = functools.partial(scrape, [live, DriftCollector(context.drift)])
            body, content_type = await asyncio.get_running_loop().run_in_executor(None, drift)
        return Reply(200, body, content_type.encode())
