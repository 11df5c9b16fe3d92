"""What the ``/api/registry`` routes share: the registry in a thread acting as the
caller's key, query and JSON body parsing, and errors the HTTP client rebuilds.

Every change is the same audited ``RegistryService`` call a local command makes; the
audit trail records the calling key (``key:<name>``, from the guard's principal, never
from anything the client sends), or the server's user when it runs without keys.
Error bodies carry the error's class name (``kind``) and every attribute (``fields``)
beside the usual ``{"error": ..., "code": ...}``, with the status of
``server.http.errors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from modelport.errors import (
    InvalidRequestError,
    ModelportError,
    UnsupportedMediaTypeError,
    UnsupportedOperationError,
)
from modelport.registry.service import RegistryService
from modelport.server.http.access import principal_of
from modelport.server.http.asgi import JSON, Receive, Scope, header, read_body
from modelport.server.http.endpoint import Endpoint, Reply
from modelport.server.http.errors import error_document, error_headers, status_of

Call = Callable[[RegistryService], Any]
JSON_BODY_LIMIT = 1 << 20  # the registry's JSON bodies are a few fields


class RegistryEndpoint(Endpoint):
    """Base of the registry routes."""

    async def call(self, scope: Scope, action: Call) -> Any:
        """Run ``action`` on the worker's registry in a thread (it opens the database),
        acting as the request's API key when the server checks keys."""
        get_registry = self.context.registry
        if get_registry is None:
            raise UnsupportedOperationError("this server has no registry")
        principal = principal_of(scope)

        def run() -> Any:
            registry = get_registry()
            if principal is not None:
                registry = registry.acting_as(principal.actor)
            return action(registry)

        return await asyncio.to_thread(run)

    async def json_body(
        self, scope: Scope, receive: Receive, accepted: tuple[str, ...]
    ) -> dict[str, Any]:
        """The request's JSON object (``{}`` when empty), refusing fields not ``accepted``."""
        content_type = header(scope, b"content-type")
        if content_type is not None and not content_type.lower().startswith("application/json"):
            raise UnsupportedMediaTypeError(
                f"{scope['method']} {scope['path']} takes application/json, not {content_type}"
            )
        raw = await read_body(scope, receive, JSON_BODY_LIMIT)
        try:
            data: Any = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"the body is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InvalidRequestError(f"the body must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(accepted))
        if unknown:
            raise InvalidRequestError(
                f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}",
                field=unknown[0],
            )
        return data

    def _error_reply(self, scope: Scope, exc: Exception) -> Reply:
        if not isinstance(exc, ModelportError):
            return super()._error_reply(scope, exc)
        status, _ = status_of(exc)
        body = orjson.dumps(error_document(exc), default=str)
        return Reply(status, body, JSON, error_headers(exc))


def query(scope: Scope, accepted: tuple[str, ...]) -> dict[str, list[str]]:
    """The query parameters (every value of each), refusing names not ``accepted``."""
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    unknown = sorted(set(raw) - set(accepted))
    if unknown:
        raise InvalidRequestError(
            f"unknown query parameter(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}",
            field=unknown[0],
        )
    return raw


def last(values: Mapping[str, list[str]], name: str) -> str | None:
    """The last value of query parameter ``name`` (None when absent)."""
    found = values.get(name)
    return found[-1] if found else None


def whole(text: str | None, name: str, default: int) -> int:
    """A whole number from a query parameter (``default`` when absent); the registry
    checks its range."""
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidRequestError(
            f"{name} must be a whole number, not {text!r}", field=name
        ) from None


def moment(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 time from a query parameter."""
    if text is None or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequestError(
            f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00+00:00, not {text!r}",
            field=name,
        ) from None


def version_param(scope: Scope) -> int:
    """The ``{version}`` path parameter as a number."""
    text = str(scope["path_params"]["version"])
    if not text.isdigit() or int(text) < 1:
        raise InvalidRequestError(
            f"version must be a positive whole number, not {text!r}", field="version"
        )
    return int(text)


def field_of(data: Mapping[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    """Field ``name`` of a JSON body, checked to be of ``kind`` (None when absent and
    not ``required``)."""
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidRequestError(f"missing field {name}", field=name)
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequestError(f"{name} must be a whole number, not {value!r}", field=name)
    if not isinstance(value, kind):
        raise InvalidRequestError(f"{name} must be a {kind.__name__}, not {value!r}", field=name)
    return value


def string_map(data: Mapping[str, Any], name: str) -> dict[str, str]:
    """A ``{"key": "value"}`` object field (tags)."""
    value = field_of(data, name, dict, required=True)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidRequestError(f"{name} must map text to text", field=name)
    return dict(value)
