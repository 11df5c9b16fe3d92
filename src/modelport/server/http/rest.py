"""modelport's own REST routes: the served models, their state and signature, metrics.

Responses never carry storage locations or other internal fields (OWASP API3): only
what a client needs to call the model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from modelport.errors import ModelNotFoundError
from modelport.monitoring.metrics import render
from modelport.server.http.asgi import Receive, Scope, header
from modelport.server.http.endpoint import Endpoint, Reply
from modelport.serving.runtime import Route


class TensorInfo(BaseModel):
    """One input or output as V2 clients see it."""

    name: str
    datatype: str
    shape: list[int]


class ModelSummary(BaseModel):
    """A served model: where it comes from and whether it is ready."""

    name: str
    source: str = Field(description="Registry reference or 'package'.")
    version: int | None = Field(description="Registry version being served (null: package).")
    state: Literal["ready", "loading", "failed"]
    runtime: str | None = Field(description="What runs the model: onnxruntime, sklearn, ...")
    error: str | None = Field(description="Why the model is not ready, when it is not.")


class ModelDetail(ModelSummary):
    """A served model with its inputs, outputs and signature."""

    flavor: str | None
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    signature: dict[str, Any] | None


class ModelsResponse(BaseModel):
    """Every served model."""

    models: list[ModelSummary]


def _summary(route: Route) -> dict[str, Any]:
    served = route.current
    state = "ready" if served is not None else ("failed" if route.error else "loading")
    return {
        "name": route.source.name,
        "source": route.source.ref or "package",
        "version": served.version if served is not None else None,
        "state": state,
        "runtime": served.runtime if served is not None else None,
        "error": route.error,
    }


class ApiModels(Endpoint):
    """GET /api/models."""

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        models = [_summary(route) for route in self.context.runtime.routes()]
        return Reply.json({"models": models})


class ApiModel(Endpoint):
    """GET /api/models/{name}."""

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

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        from modelport.server.http.openapi import openapi_document

        return Reply.json(openapi_document())


class Metrics(Endpoint):
    """GET /metrics: Prometheus text format (OpenMetrics when the scraper asks for it)."""

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        context = self.context
        context.metrics.flush()  # this worker's latest; the others flush every second
        body, content_type = render(
            context.metrics.registry, context.multiprocess_dir, header(scope, b"accept")
        )
        return Reply(200, body, content_type.encode())
