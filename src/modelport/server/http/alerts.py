"""``GET /api/monitoring/{model}/alerts``: a model's alert rules, states and history.

The history is in the metadata database, so every replica answers the same whoever
evaluates the rules. The read runs in a thread: store calls never block the loop.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from modelport.errors import InvalidRequestError, UnsupportedOperationError
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Endpoint, Reply

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class ApiAlerts(Endpoint):
    """GET /api/monitoring/{model}/alerts[?limit=N]."""

    access = Access(("read",), "model")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        model = scope["path_params"]["model"]
        history = self.context.alerts
        if history is None:
            raise UnsupportedOperationError("this server keeps no alert history", model=model)
        data = await asyncio.to_thread(history, model, history_limit(scope))
        return Reply.json(data)


def history_limit(scope: Scope) -> int:
    """The ``limit`` query parameter (default ``DEFAULT_LIMIT``), from 1 to ``MAX_LIMIT``."""
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("limit") if query else None
    if not values:
        return DEFAULT_LIMIT
    try:
        limit = int(values[-1])
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {values[-1]!r}",
            field="limit",
        )
    return limit
