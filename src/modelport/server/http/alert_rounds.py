"""The control plane's alert routes beyond one model's history:
``POST /api/monitoring/alerts/evaluate`` runs one round of the rules (``monitoring.
alerts.rounds``) and ``GET /api/monitoring/alerts`` lists the rules, states and history
of every model the key may read. Both run in a thread: store calls never block the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from modelport.errors import UnsupportedOperationError
from modelport.server.http.access import Access, allows, principal_of
from modelport.server.http.alerts import history_limit
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint, query

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answers(ok: str, *codes: int) -> dict[str, Any]:
    errors = {
        str(code): {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
        for code in codes
    }
    return {"200": {"description": ok, "content": {"application/json": {}}}, **errors}


class ApiAlertRound(RegistryEndpoint):
    """POST /api/monitoring/alerts/evaluate: evaluate every rule once (``admin``, or
    ``deploy`` on every model); the outcomes, as ``modelport monitor run --once`` has them."""

    access = Access(("deploy",), unscoped=True)
    openapi: ClassVar[dict[str, Any]] = {
        "post": {
            "summary": "Evaluate every alert rule once, here (state changes are audited); "
            "webhooks and retrain actions run from this server",
            "responses": _answers(
                "{outcomes: [{rule, state, changed, notified, error, lost_race}]}", 400, 501
            ),
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        query(scope, ())
        rounds = self.context.alert_rounds
        if rounds is None:
            raise UnsupportedOperationError("this server evaluates no alert rules")
        principal = principal_of(scope)
        actor = principal.actor if principal is not None else None
        outcomes = await asyncio.to_thread(rounds, actor)
        return Reply.json({"outcomes": outcomes})


class ApiAlertList(RegistryEndpoint):
    """GET /api/monitoring/alerts[?limit=N]: the rules, states, transitions and
    deliveries of every model the key may read."""

    access = Access(("read",))
    openapi: ClassVar[dict[str, Any]] = {
        "get": {
            "summary": "The alert rules, states, transitions and deliveries of every model "
            "the key may read",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
            "responses": _answers("{model: null, rules, events, deliveries}", 400, 501),
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        query(scope, ("limit",))
        lists = self.context.alert_lists
        if lists is None:
            raise UnsupportedOperationError("this server keeps no alert history")
        principal = principal_of(scope)

        def readable(model: str) -> bool:
            return principal is None or allows(principal, ("read",), model)

        data = await asyncio.to_thread(lists, history_limit(scope), readable)
        return Reply.json(data)
