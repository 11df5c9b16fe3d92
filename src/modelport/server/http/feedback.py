"""Ground truth over HTTP: ``POST /api/feedback`` and ``GET /api/monitoring/{model}/performance``.

Both read and write Parquet files of the prediction log, so they run in a thread: the
event loop keeps answering inference requests meanwhile. Only models served here take
labels or report performance (an arbitrary name in a body or URL never reaches the file
system). DuckDB, PyArrow and SciPy are imported at the first such request, not at a
worker's start.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from modelport.errors import InvalidRequestError, ModelNotFoundError, UnsupportedMediaTypeError
from modelport.monitoring.windows import parse_since
from modelport.security.principal import Principal
from modelport.server.http.access import Access, allows, denied, principal_of
from modelport.server.http.asgi import Receive, Scope, header, read_body
from modelport.server.http.endpoint import Endpoint, Reply

ACTOR_HEADER = b"x-modelport-actor"
_ACTOR = re.compile(r"[\x20-\x7e]{1,128}")
DEFAULT_SINCE = "24h"
_PERFORMANCE_PARAMS = ("since", "until", "version", "task")


class Feedback(Endpoint):
    """POST /api/feedback: labels for logged predictions (``monitoring.feedback.items``)."""

    access = Access(("feedback",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        from modelport.monitoring.feedback.intake import receive_labels
        from modelport.monitoring.feedback.items import ACCEPTED, parse_feedback

        uri = self._log_uri()
        content_type = header(scope, b"content-type")
        if content_type is not None and not content_type.lower().startswith("application/json"):
            raise UnsupportedMediaTypeError(
                f"POST /api/feedback takes application/json, not {content_type}"
            )
        body = await read_body(scope, receive, self.context.settings.max_body_bytes)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            message = f"the body is not valid JSON ({exc}); accepted: {ACCEPTED}"
            raise InvalidRequestError(message) from None
        principal = principal_of(scope)
        parsed = parse_feedback(data, lambda name: self._not_served(principal, name))
        if parsed.count == 1 and parsed.errors and not isinstance(data, list):
            raise InvalidRequestError(f"{parsed.errors[0]['error']}; accepted: {ACCEPTED}")
        answer = await asyncio.to_thread(
            receive_labels,
            uri,
            parsed.labels,
            actor=_actor(scope),
            source="api",
            errors=parsed.errors,
        )
        return Reply.json(answer)

    def _not_served(self, principal: Principal | None, name: str) -> str | None:
        # Each item's model is checked against the key before anything else is said
        # about it (whether it is served here included).
        if principal is not None and not allows(principal, ("feedback",), name):
            raise denied(principal, ("feedback",), name)  # the whole request: 403
        if self.context.runtime.serves(name):
            return None
        served = ", ".join(sorted(r.source.name for r in self.context.runtime.routes()))
        return f"model {name!r} is not served here (served: {served or 'none'})"

    def _log_uri(self) -> str:
        if self.context.prediction_log_uri is None:
            raise InvalidRequestError("this server has no prediction log to store labels in")
        return self.context.prediction_log_uri


class Performance(Endpoint):
    """GET /api/monitoring/{model}/performance?since=1h&until=...&version=3&task=..."""

    access = Access(("read",), "model")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        from modelport.monitoring.performance import live_performance

        name = scope["path_params"]["model"]
        if not self.context.runtime.serves(name):
            raise ModelNotFoundError(f"model {name!r} is not served here", model=name)
        if self.context.prediction_log_uri is None:
            raise InvalidRequestError("this server has no prediction log")
        params = _query(scope)
        now = datetime.now(UTC)
        since = parse_since(params.get("since", DEFAULT_SINCE), now)
        until = parse_since(params["until"], now, field="until") if "until" in params else None
        task = params.get("task")
        if task not in (None, "classification", "regression"):
            raise InvalidRequestError(f"task={task!r}: use classification or regression")
        report = await asyncio.to_thread(
            live_performance,
            self.context.prediction_log_uri,
            name,
            version=params.get("version") or None,
            since=since,
            until=until,
            task=task,  # type: ignore[arg-type]  # checked above
        )
        return Reply.json(report.to_dict())


def _query(scope: Scope) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    unknown = sorted(set(raw) - set(_PERFORMANCE_PARAMS))
    if unknown:
        raise InvalidRequestError(
            f"unknown query parameter(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(_PERFORMANCE_PARAMS)}"
        )
    repeated = sorted(key for key, values in raw.items() if len(values) > 1)
    if repeated:
        raise InvalidRequestError(f"query parameter(s) {', '.join(repeated)} given twice")
    return {key: values[0] for key, values in raw.items()}


def _actor(scope: Scope) -> str:
    """Who sent the labels: the API key (``key:<name>``) when the server checks keys,
    else the X-Modelport-Actor header when sane, else the client."""
    principal = principal_of(scope)
    if principal is not None:
        return principal.actor
    given = header(scope, ACTOR_HEADER)
    if given and _ACTOR.fullmatch(given):
        return given
    client: Any = scope.get("client")
    return f"api:{client[0]}" if client else "api"
