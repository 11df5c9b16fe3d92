"""A deployment's results on the serving server, as ``modelport deploy status|results|
compare`` print them.

- ``GET /api/deployments/{name}/status?since=1h[&until=...]``: each arm's traffic,
  errors, latency and live accuracy;
- ``GET /api/deployments/{name}/results?since=24h[&confidence=0.95][&power=0.8]
  [&score=COLUMN]``: the same and each arm against the champion, with verdicts;
- ``GET /api/deployments/{name}/compare?since=24h[&shadow=ARM][&top=10]``: each shadow
  against the champion on the same requests.

The deployment is read from the registry and the prediction log queried with DuckDB,
both in a thread, off the event loop. The ``*_document`` functions do the work for a
given ``Deployment``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from modelport.domain.deployments import Deployment
from modelport.errors import InvalidArgumentError, UnsupportedOperationError
from modelport.monitoring.windows import parse_since
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Endpoint, Reply

STATUS_SINCE = "1h"
RESULTS_SINCE = "24h"
_MAX_TOP = 1000


def status_document(
    log_uri: str, deployment: Deployment, query: Mapping[str, str]
) -> dict[str, Any]:
    """The answer of ``/status`` for ``deployment``."""
    # Imported at the first question, in its thread: the statistics behind it (scipy.stats)
    # take half a second to import, which every worker's start would otherwise pay.
    from modelport.rollout.results import deployment_status

    since, until = _window(query, STATUS_SINCE)
    return deployment_status(log_uri, deployment, since=since, until=until).to_dict()


def results_document(
    log_uri: str, deployment: Deployment, query: Mapping[str, str]
) -> dict[str, Any]:
    """The answer of ``/results`` for ``deployment``."""
    from modelport.rollout.results import ResultsOptions, deployment_status

    since, until = _window(query, RESULTS_SINCE)
    options = ResultsOptions(
        confidence=_number(query, "confidence", 0.95),
        power=_number(query, "power", 0.8),
        score=query.get("score") or None,
    )
    report = deployment_status(
        log_uri, deployment, since=since, until=until, options=options, compare=True
    )
    return report.to_dict()


def compare_document(
    log_uri: str, deployment: Deployment, query: Mapping[str, str]
) -> dict[str, Any]:
    """The answer of ``/compare`` for ``deployment``."""
    from modelport.rollout.results import shadow_comparisons

    since, until = _window(query, RESULTS_SINCE)
    top = _top(query.get("top") or "10")
    found = shadow_comparisons(
        log_uri, deployment, since=since, until=until, shadow=query.get("shadow") or None, top=top
    )
    return {"deployment": deployment.name, "shadows": [c.to_dict() for c in found]}


def _top(text: str) -> int:
    try:
        top = int(text)
    except ValueError:
        top = -1
    if not 0 <= top <= _MAX_TOP:
        raise InvalidArgumentError(
            f"top={text!r} is not a whole number between 0 and {_MAX_TOP}", field="top"
        )
    return top


def _window(query: Mapping[str, str], default: str) -> tuple[datetime, datetime | None]:
    since = parse_since(query.get("since") or default)
    until = parse_since(query["until"], field="until") if query.get("until") else None
    return since, until


def _number(query: Mapping[str, str], name: str, default: float) -> float:
    text = query.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise InvalidArgumentError(
            f"query parameter {name}={text!r} is not a number", field=name
        ) from None


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(raw, keep_blank_values=True)
    for key, items in values.items():
        if len(items) > 1:
            raise InvalidArgumentError(f"query parameter {key!r} is given twice", field=key)
    return {key: items[0] for key, items in values.items()}


class _DeploymentReport(Endpoint):
    """A GET over one deployment and the prediction log."""

    access = Access(("read",), "name")

    def document(self, log_uri: str, deployment: Deployment, query: Mapping[str, str]) -> Any:
        """The answer's body."""
        raise NotImplementedError

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        query = _query(scope)
        registry, log_uri = self.context.registry, self.context.prediction_log_uri
        if registry is None:
            raise UnsupportedOperationError("this server has no registry to read deployments from")
        if log_uri is None:
            raise UnsupportedOperationError("this server has no prediction log to read")

        def run() -> Any:
            return self.document(log_uri, registry().get_deployment(name), query)

        return Reply.json(await asyncio.to_thread(run))


class ApiDeploymentStatus(_DeploymentReport):
    """GET /api/deployments/{name}/status."""

    def document(self, log_uri: str, deployment: Deployment, query: Mapping[str, str]) -> Any:
        return status_document(log_uri, deployment, query)


class ApiDeploymentResults(_DeploymentReport):
    """GET /api/deployments/{name}/results."""

    def document(self, log_uri: str, deployment: Deployment, query: Mapping[str, str]) -> Any:
        return results_document(log_uri, deployment, query)


class ApiDeploymentCompare(_DeploymentReport):
    """GET /api/deployments/{name}/compare."""

    def document(self, log_uri: str, deployment: Deployment, query: Mapping[str, str]) -> Any:
        return compare_document(log_uri, deployment, query)
