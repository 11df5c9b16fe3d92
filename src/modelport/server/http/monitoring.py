"""Monitoring routes of the serving server: drift over the prediction log.

``GET /api/monitoring/{model}/drift?since=1h[&until=...][&version=3]
[&method.COLUMN=psi][&threshold.COLUMN=0.2]`` runs ``monitoring.drift_window`` over the
log window against the reference statistics of the served version (the current one,
or a retiring one still held); DuckDB runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from modelport.errors import (
    InvalidArgumentError,
    MissingStatisticsError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.monitoring.windows import parse_since
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Endpoint, Reply
from modelport.serving.served import ServedModel

DEFAULT_SINCE = "1h"
_SINGLE = ("since", "until", "version")


class ApiDrift(Endpoint):
    """GET /api/monitoring/{model}/drift."""

    access = Access(("read",), "model")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["model"]
        query = _query(scope)
        served = self._served(name, query.get("version"))
        since = parse_since(query.get("since", DEFAULT_SINCE))
        until = parse_since(query["until"], field="until") if "until" in query else None
        uri = self.context.prediction_log_uri
        if uri is None:
            raise InvalidArgumentError("this server has no prediction log to read")
        run = functools.partial(
            _drift,
            uri,
            served,
            since=since,
            until=until,
            methods=_prefixed(scope, "method."),
            thresholds=_prefixed(scope, "threshold."),
        )
        # In a thread: DuckDB's query, and the first request's imports (DuckDB, scipy,
        # pandas), never run on the event loop.
        window = await asyncio.get_running_loop().run_in_executor(None, run)
        return Reply.json(window)

    def _served(self, name: str, version: str | None) -> ServedModel:
        route = next((r for r in self.context.runtime.routes() if r.source.name == name), None)
        if route is None:
            raise ModelNotFoundError(f"model {name!r} is not served here", model=name)
        versions = [v for v in (route.current, *route.retiring) if v is not None]
        if not versions:
            raise ModelNotFoundError(f"model {name!r} is not loaded yet", model=name)
        if version is None:
            return versions[0]
        for served in versions:
            if served.version_label == version:
                return served
        raise VersionNotFoundError(
            f"model {name!r} version {version} is not served here; the CLI reads any "
            f"version's statistics from the registry: modelport monitor drift {name}/{version}",
            model=name,
        )


def _drift(
    uri: str,
    served: ServedModel,
    *,
    since: datetime,
    until: datetime | None,
    methods: dict[str, str],
    thresholds: dict[str, str],
) -> dict[str, Any]:
    from modelport.monitoring.drift.selection import parse_options
    from modelport.monitoring.drift_window import drift_over_log, missing_statistics

    label = served.version_label
    if served.reference_stats is None:
        raise missing_statistics(served.name, label, "it has no reference statistics")
    try:
        window = drift_over_log(
            uri,
            served.name,
            served.reference_stats,
            version=label or None,
            since=since,
            until=until,
            options=parse_options(methods, thresholds),
        )
    except MissingStatisticsError as exc:  # statistics too old for the tests
        raise missing_statistics(served.name, label, exc.message) from None
    return window.to_dict()


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(raw, keep_blank_values=True)
    for key in _SINGLE:
        if len(values.get(key, [])) > 1:
            raise InvalidArgumentError(f"query parameter {key!r} is given twice", field=key)
    return {key: items[0] for key, items in values.items()}


def _prefixed(scope: Scope, prefix: str) -> dict[str, str]:
    return {k.removeprefix(prefix): v for k, v in _query(scope).items() if k.startswith(prefix)}
