"""The guard in front of every route: API key, scope, then admission (rate limits).

``Guard.wrap`` puts one ``Guarded`` around each endpoint when the server checks keys or
has an ``Admission``; otherwise the endpoint is served bare and pays nothing. A guarded
request is checked in this order:

1. the client address's failed authentications (429, ``limit="auth"``, after 20 in 60 s);
2. ``Authorization: Bearer <key>`` against the worker's keys (``KeyChecks``: 401 with
   ``WWW-Authenticate`` for a missing, malformed, unknown, revoked or expired key); a
   key they must still ask about (a replica's, not seen within its TTL) is awaited;
3. the route's ``Access`` for the model the request names (403 naming the scope);
4. ``ServerContext.admission.admit(principal, model)`` when set and some limit could
   apply (``may_limit``; 429 from its limits).

The authenticated ``Principal`` is put in the scope (``access.PRINCIPAL_KEY``) for the
routes that filter listings, check body models or record the actor. Keys are never
logged; denials are, with the key's name.
"""

from __future__ import annotations

import logging

from modelport.errors import AuthenticationError, ModelportError, PermissionDeniedError
from modelport.security.failures import FailureThrottle
from modelport.security.key_checks import KeyChecks
from modelport.security.principal import Admission, Principal
from modelport.server.http.access import PRINCIPAL_KEY, require
from modelport.server.http.asgi import ASGIApp, Receive, Scope, Send, header, respond
from modelport.server.http.endpoint import Endpoint, Reply

logger = logging.getLogger("modelport.security")


class Guard:
    """What every guarded route shares: the keys (None: no keys checked), the failure
    throttle and the admission."""

    def __init__(
        self,
        keys: KeyChecks | None,
        admission: Admission | None,
        *,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self.keys = keys
        self.admission = admission
        self.throttle = throttle if throttle is not None else FailureThrottle()

    @property
    def active(self) -> bool:
        """Whether requests are checked at all."""
        return self.keys is not None or self.admission is not None

    def wrap(self, endpoint: Endpoint) -> ASGIApp:
        """``endpoint`` guarded, or bare when nothing is checked or the route is open."""
        if not self.active or endpoint.access.open:
            return endpoint
        return Guarded(endpoint, self)

    def authenticate(self, scope: Scope) -> Principal | None:
        """The request's principal (None without keys; ``UNVERIFIED`` for a key the
        keys must still ask about: then ``verify``); 401 or 429 otherwise."""
        keys = self.keys
        if keys is None:
            return None
        address = _address(scope)
        self.throttle.check(address)
        try:
            principal = keys.authenticate(header(scope, b"authorization"))
        except AuthenticationError:
            self._failed(scope, address)
            raise
        return UNVERIFIED if principal is None else principal

    async def verify(self, scope: Scope) -> Principal:
        """The principal of a key ``authenticate`` could not answer for yet."""
        assert self.keys is not None
        try:
            return await self.keys.verify(header(scope, b"authorization"))
        except AuthenticationError:
            self._failed(scope, _address(scope))
            raise

    def _failed(self, scope: Scope, address: str) -> None:
        self.throttle.failed(address)
        logger.info(
            "refused %s %s from %s: no usable API key", scope["method"], scope["path"], address
        )


# What Guard.authenticate answers for a key not known here yet (compared by identity).
UNVERIFIED = Principal("", "")


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class Guarded:
    """One endpoint behind the guard."""

    def __init__(self, endpoint: Endpoint, guard: Guard) -> None:
        self._endpoint = endpoint
        self._guard = guard
        self._access = endpoint.access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await self.check(scope)
        if refusal is not None:
            await respond(send, refusal.status, refusal.body, refusal.content_type, refusal.headers)
            return
        await self._endpoint(scope, receive, send)

    async def check(self, scope: Scope, *, admit: bool = True) -> Reply | None:
        """None when the request may go on (its principal then in the scope), else the
        refusal to send. ``admit=False`` skips the rate limits (for a request that will
        be refused anyway: a method the route does not have)."""
        endpoint = self._endpoint
        try:
            principal = self._guard.authenticate(scope)
            if principal is UNVERIFIED:
                principal = await self._guard.verify(scope)
            model = endpoint.access_model(scope)
            if principal is not None:
                self._authorize(scope, principal, model)
                scope[PRINCIPAL_KEY] = principal
            admission = self._guard.admission
            if admit and admission is not None and admission.may_limit(principal, model):
                await admission.admit(principal, model)
        except ModelportError as exc:
            return endpoint.error_reply(scope, exc)
        return None

    def _authorize(self, scope: Scope, principal: Principal, model: str | None) -> None:
        try:
            require(principal, self._access, scope["method"], model)
        except PermissionDeniedError as exc:
            logger.info(
                "denied %s %s to key %r: needs %s",
                scope["method"],
                scope["path"],
                principal.name,
                exc.scope,
            )
            raise
