"""Triton's extensions of the V2 protocol that tritonclient exposes and tools call: model
configuration, statistics, and the model repository (``server.http.triton_bodies`` has
the bodies).

* ``GET /v2/models/{name}[/versions/{v}]/config``: the served version's configuration.
* ``GET /v2/models[/{name}[/versions/{v}]]/stats``: per-version statistics since the
  server started, summed over its workers (``monitoring.inference_stats``).
* ``POST /v2/repository/index``: every served name with the state of its versions; the
  body may be empty or ``{"ready": true}`` (only the versions ready for inference).
* ``POST /v2/repository/models/{name}/load|unload``: refused with 501 and the reason.
  The served models follow their registry references: which version serves is decided
  by moving an alias or stage, and which models by the ``serve`` command. The message
  starts as Triton's does when its model control mode forbids loading, so scripts that
  look for it keep working.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelport.domain.refs import parse_ref
from modelport.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedOperationError,
    VersionNotFoundError,
)
from modelport.monitoring.inference_stats import VersionTotals
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope, read_body
from modelport.server.http.endpoint import Endpoint, Reply
from modelport.server.http.triton_bodies import READY, index_entries, model_config, model_stat

_INDEX_BODY_LIMIT = 64 * 1024  # ``{"ready": true}``: anything big is not an index request


class ModelConfig(Endpoint):
    """GET /v2/models/{name}[/versions/{version}]/config."""

    access = Access(("read", "predict"), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        params = scope["path_params"]
        served = self.context.runtime.get(params["name"], params.get("version"))
        return Reply.json(model_config(served, self.context.settings.request_timeout_s))


class ModelStatistics(Endpoint):
    """GET /v2/models/stats, /v2/models/{name}/stats, /v2/models/{name}/versions/{v}/stats."""

    access = Access(("read",), "name", unscoped=True)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        params = scope.get("path_params") or {}
        name, version = params.get("name"), params.get("version")
        if name is not None and not self.context.runtime.serves(name):
            raise ModelNotFoundError(f"model {name!r} is not served here", model=name)
        totals = self.context.metrics.stats.totals()
        chosen = [t for t in totals.values() if name is None or t.model == name]
        if version is not None:
            chosen = [t for t in chosen if t.version == version]
            if not chosen:
                raise VersionNotFoundError(
                    f"model {name!r} version {version} has not been served here", model=name
                )
        chosen.sort(key=_order)
        return Reply.json({"model_stats": [model_stat(t) for t in chosen]})


def _order(totals: VersionTotals) -> tuple[str, int, str]:
    version = totals.version
    return totals.model, int(version) if version.isdigit() else -1, version


class RepositoryIndex(Endpoint):
    """POST /v2/repository/index."""

    access = Access(("read",), unscoped=True)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        ready_only = _ready_filter(await read_body(scope, receive, _INDEX_BODY_LIMIT))
        entries = [e for r in self.context.runtime.routes() for e in index_entries(r)]
        if ready_only:
            entries = [e for e in entries if e["state"] == READY]
        return Reply.json(entries)


def _ready_filter(body: bytes) -> bool:
    """The ``ready`` field of an index request (tritonclient sends an empty body)."""
    if not body.strip():
        return False
    try:
        request: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        request = None
    if not isinstance(request, dict):
        raise InvalidRequestError(
            'the repository index request must be a JSON object such as {"ready": true}, or empty'
        )
    ready = request.get("ready", False)
    if not isinstance(ready, bool):
        raise InvalidRequestError(
            f'"ready" must be true or false, got {orjson.dumps(ready).decode()}', field="ready"
        )
    return ready


class RepositoryControl(Endpoint):
    """POST /v2/repository/models/{name}/load and .../unload: always refused (501)."""

    access = Access(("deploy",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        action = scope["path"].rsplit("/", 1)[-1]
        raise UnsupportedOperationError(
            f"explicit model load / unload is not allowed: modelport does not {action} models "
            "on request. It serves the models it was started with and follows their registry "
            f"references: {self._how_to_switch(name)}; to serve other models, restart "
            "modelport serve with them",
            model=name,
        )

    def _how_to_switch(self, name: str) -> str:
        route = next((r for r in self.context.runtime.routes() if r.source.name == name), None)
        ref = route.source.ref if route is not None else None
        alias = parse_ref(ref).alias if ref is not None else None
        return (
            f"to serve another version of {name!r}, move the alias or stage it follows "
            f"(modelport alias set {name} {alias or 'ALIAS'} VERSION) and every worker "
            "switches to it within poll_interval_s"
        )
