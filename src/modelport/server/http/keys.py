"""``/api/keys`` (admin): list, create and revoke API keys over HTTP; ``GET /api``: what
this server is and how it authenticates.

Keys are written to the metadata database in a thread (``security.key_admin``, each
change audited with the calling key as the actor); the worker that made the change
re-reads its keys at once, the others within ``keys_refresh_s``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from modelport import __version__
from modelport.domain.keys import ADMIN
from modelport.errors import (
    InvalidRequestError,
    UnsupportedMediaTypeError,
    UnsupportedOperationError,
)
from modelport.security.key_admin import KeyAdmin, parse_expiry
from modelport.server.http.access import Access, principal_of
from modelport.server.http.asgi import Receive, Scope, header, read_body
from modelport.server.http.endpoint import Endpoint, Reply

_REQUIRED = ("name", "scopes")
_OPTIONAL = ("expires", "rate_limit", "daily_quota")
_BODY_LIMIT = 64 * 1024
INSECURE = "insecure-no-auth"


class ServerInfo(Endpoint):
    """GET /api: version, whether and how API keys are checked, TLS."""

    access = Access(("read",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        context = self.context
        auth = context.auth
        info: dict[str, Any] = {
            "name": "modelport",
            "version": __version__,
            "auth": auth,
            "keys": None,
            "tls": scope.get("scheme") == "https",
            "warning": None,
            # None: no rate limits (none configured, and no keys that could carry any).
            "rate_limits": getattr(context.admission, "description", None),
        }
        if auth == "api-keys":
            info["keys"] = (
                "Authorization: Bearer mp_<key_id>_<secret>; HMAC-SHA256 of the secret, "
                "compared in constant time; keys re-read from the metadata database "
                f"every {context.keys_refresh_s:g} s"
            )
        elif auth == INSECURE:
            info["warning"] = (
                "INSECURE: this server is reachable from other machines and checks no API "
                "keys (--insecure-no-auth): anyone who reaches it can call every route"
            )
        return Reply.json(info)


class _KeyEndpoint(Endpoint):
    """Base of the key routes: ``KeyAdmin`` over the registry's metadata store."""

    access = Access((ADMIN,))

    async def run(self, scope: Scope, action: Any) -> Any:
        """``action(admin, actor)`` in a thread; this worker's keys re-read after."""
        get_registry = self.context.registry
        if get_registry is None:
            raise UnsupportedOperationError("this server has no metadata database to keep keys in")
        principal = principal_of(scope)
        keys = self.context.keys

        def call() -> Any:
            registry = get_registry()
            actor = principal.actor if principal is not None else registry.actor
            result = action(KeyAdmin(registry.metadata), actor)
            if keys is not None:
                keys.refresh()
            return result

        return await asyncio.to_thread(call)


class ApiKeys(_KeyEndpoint):
    """GET /api/keys (every key, never a secret) and POST /api/keys (a new key: its
    token is in this answer only)."""

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        if scope["method"] in ("GET", "HEAD"):
            found = await self.run(scope, lambda admin, actor: admin.list())
            return Reply.json({"keys": [key.to_dict() for key in found]})
        data = await _body(scope, receive)
        expires = data.get("expires")
        expires_in = parse_expiry(expires) if expires is not None else None

        def create(admin: KeyAdmin, actor: str) -> Any:
            return admin.create(
                data["name"],
                data["scopes"],
                actor=actor,
                expires_in=expires_in,
                rate_limit=data.get("rate_limit"),
                daily_quota=data.get("daily_quota"),
            )

        key, token = await self.run(scope, create)
        created = Reply.json({**key.to_dict(), "key": token}, status=201)
        # The one answer that carries a secret: no cache may keep it (POST answers get no
        # hardening headers from Front).
        return Reply(created.status, created.body, created.content_type, _NO_STORE)


class ApiKeyItem(_KeyEndpoint):
    """DELETE /api/keys/{key_id}: revoke a key (at once here, within ``keys_refresh_s``
    on the other workers and servers)."""

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        key_id = scope["path_params"]["key_id"]
        revoked = await self.run(scope, lambda admin, actor: admin.revoke(key_id, actor=actor))
        return Reply.json(revoked.to_dict())


async def _body(scope: Scope, receive: Receive) -> dict[str, Any]:
    content_type = header(scope, b"content-type")
    if content_type is not None and not content_type.lower().startswith("application/json"):
        raise UnsupportedMediaTypeError(
            f"POST /api/keys takes application/json, not {content_type}"
        )
    try:
        data = orjson.loads(await read_body(scope, receive, _BODY_LIMIT))
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidRequestError('the body must be a JSON object: {"name": ..., "scopes": [...]}')
    accepted = (*_REQUIRED, *_OPTIONAL)
    unknown = sorted(set(data) - set(accepted))
    if unknown:
        raise InvalidRequestError(
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}",
            field=unknown[0],
        )
    _check_types(data)
    return data


def _check_types(data: dict[str, Any]) -> None:
    if not isinstance(data.get("name"), str):
        raise InvalidRequestError('"name" must be a string', field="name")
    scopes = data.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidRequestError('"scopes" must be a list of strings', field="scopes")
    for name in ("expires", "rate_limit"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise InvalidRequestError(f'"{name}" must be a string', field=name)
    quota = data.get("daily_quota")
    if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool)):
        raise InvalidRequestError('"daily_quota" must be a whole number', field="daily_quota")


_NO_STORE = ((b"cache-control", b"no-store"),)
