"""``POST /api/keys/verify`` (scope ``verify``, or ``admin``): a serving replica that
follows this control plane by its URL asks whether a key one of its callers presented
is usable, and learns its id, name, scopes and limits (never its hash).

The replica authenticates with its own key; a dedicated scope, rather than ``read``,
because the answer is an oracle for tokens: a key that may read models (a dashboard's,
a CI job's) must not be able to test stolen or guessed tokens, nor learn other keys'
scopes. An unusable token is an answer (``{"valid": false}``), not an error, so that
the replica can tell its caller's key from its own. Failed verifications are counted
per calling key (``FAILURES_PER_MINUTE``; 429 beyond): a replica relaying a flood of
bad tokens is slowed here too, whatever it does itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from modelport.domain.keys import VERIFY
from modelport.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelportError,
    UnsupportedMediaTypeError,
    UnsupportedOperationError,
)
from modelport.security.failures import FailureThrottle
from modelport.server.http.access import Access, principal_of
from modelport.server.http.asgi import JSON, Receive, Scope, header, read_body
from modelport.server.http.endpoint import Endpoint, Reply, ServerContext
from modelport.server.http.errors import error_document, error_headers, status_of

FAILURES_PER_MINUTE = 600
_BODY_LIMIT = 4096
_NO_STORE = ((b"cache-control", b"no-store"),)
_ANSWER = {
    "type": "object",
    "required": ["valid", "ttl_s"],
    "properties": {
        "valid": {"type": "boolean"},
        "ttl_s": {"type": "number", "description": "How long the answer may be cached."},
        "key_id": {"type": "string"},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "rate_limit": {"type": ["string", "null"]},
        "daily_quota": {"type": ["integer", "null"]},
        "expires_at": {"type": ["number", "null"], "description": "Epoch seconds."},
    },
}


class KeyVerify(Endpoint):
    """POST /api/keys/verify ``{"key": "mp_..."}``."""

    access = Access((VERIFY,))
    openapi: ClassVar[dict[str, Any]] = {
        "post": {
            "summary": "Whether an API key a replica's caller presented is usable, with its "
            "id, name, scopes and limits (cacheable for ttl_s); verify or admin",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {
                    "type": "object", "required": ["key"], "additionalProperties": False,
                    "properties": {"key": {"type": "string"}},
                }}},
            },
            "responses": {
                "200": {"description": "the verdict",
                        "content": {"application/json": {"schema": _ANSWER}}},
                "400": {"description": "not {\"key\": string}"},
                "415": {"description": "not application/json"},
                "501": {"description": "this server checks no API keys"},
            },
        }
    }  # fmt: skip

    def __init__(self, context: ServerContext) -> None:
        super().__init__(context)
        self._throttle = FailureThrottle(limit=FAILURES_PER_MINUTE)

    def _error_reply(self, scope: Scope, exc: Exception) -> Reply:
        # The registry routes' error document (kind and fields): the client raises the
        # same class with the same attributes (remote.errors).
        if not isinstance(exc, ModelportError):
            return super()._error_reply(scope, exc)
        status, _ = status_of(exc)
        return Reply(status, orjson.dumps(error_document(exc), default=str), JSON,
                     error_headers(exc))  # fmt: skip

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        keys = self.context.keys
        if keys is None:
            raise UnsupportedOperationError(
                "this server checks no API keys (auth off), so it cannot vouch for one: "
                "turn keys on (MODELPORT_SECURITY__AUTH=on) on the control plane",
                field="security.auth",
            )
        token = await _token(scope, receive)
        caller = principal_of(scope)
        asking = caller.key_id if caller is not None else "unknown"
        self._throttle.check(asking)
        ttl = self.context.keys_refresh_s
        try:
            principal = keys.authenticate("Bearer " + token)
        except AuthenticationError:
            principal = None
        if principal is None:  # a book over the database knows every key
            self._throttle.failed(asking)
            return _answer({"valid": False, "ttl_s": ttl})
        return _answer(
            {
                "valid": True,
                "ttl_s": ttl,
                "key_id": principal.key_id,
                "name": principal.name,
                "scopes": sorted(principal.scopes),
                "rate_limit": principal.rate_limit,
                "daily_quota": principal.daily_quota,
                "expires_at": keys.expires_at(principal.key_id),
            }
        )


def _answer(data: dict[str, Any]) -> Reply:
    """A verdict no cache between the servers may keep (it is about a secret)."""
    reply = Reply.json(data)
    return Reply(reply.status, reply.body, reply.content_type, _NO_STORE)


async def _token(scope: Scope, receive: Receive) -> str:
    content_type = header(scope, b"content-type")
    if content_type is None or not content_type.lower().startswith("application/json"):
        raise UnsupportedMediaTypeError(
            f"POST /api/keys/verify takes application/json, not {content_type or 'nothing'}"
        )
    try:
        data = orjson.loads(await read_body(scope, receive, _BODY_LIMIT))
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or set(data) != {"key"} or not isinstance(data["key"], str):
        raise InvalidRequestError('the body must be {"key": "mp_..."} and nothing else',
                                  field="key")  # fmt: skip
    return data["key"]
