"""What each route needs from an API key: its scope actions, and where the model is.

Every ``Endpoint`` declares ``access``. A request is allowed when its key has ``admin``,
or one of the route's actions unscoped (``predict``) or scoped to the model the request
names (``predict:churn``): the model comes from the path parameter ``param`` (per-object
authorization, OWASP API1), or from the body, checked by the route itself (feedback).
A route that names no model needs the action on some model (``read:churn`` may call
``GET /api``), or, when ``unscoped``, the action on every model (``/v2/models/stats``
reports them all). ``writes`` are the actions for the methods that change state, when
they differ from reading's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelport.domain.keys import ADMIN
from modelport.errors import PermissionDeniedError
from modelport.security.principal import Principal
from modelport.server.http.asgi import Scope

PRINCIPAL_KEY = "modelport.principal"
_READING = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Access:
    """A route's requirement (``open``: no key at all; no ``actions``: any valid key)."""

    actions: tuple[str, ...] = ()
    param: str | None = None
    unscoped: bool = False
    writes: tuple[str, ...] | None = None
    open: bool = False

    def actions_for(self, method: str) -> tuple[str, ...]:
        """The actions a request with ``method`` needs."""
        if self.writes is not None and method not in _READING:
            return self.writes
        return self.actions


OPEN = Access(open=True)
ANY_KEY = Access()
ADMIN_ONLY = Access((ADMIN,))


def allows(principal: Principal, actions: Iterable[str], model: str | None) -> bool:
    """Whether ``principal`` may do one of ``actions`` on ``model`` (None: on every model)."""
    scopes = principal.scopes
    if ADMIN in scopes:
        return True
    for action in actions:
        if action in scopes or (model is not None and f"{action}:{model}" in scopes):
            return True
    return False


def allows_some(principal: Principal, actions: tuple[str, ...]) -> bool:
    """Whether ``principal`` may do one of ``actions`` on at least one model."""
    scopes = principal.scopes
    if ADMIN in scopes:
        return True
    return any(scope.partition(":")[0] in actions for scope in scopes)


def require(principal: Principal, access: Access, method: str, model: str | None) -> None:
    """``PermissionDeniedError`` naming the missing scope, unless ``principal`` may."""
    actions = access.actions_for(method)
    if not actions:
        return
    if model is None and not access.unscoped:
        if allows_some(principal, actions):
            return
    elif allows(principal, actions, model):
        return
    raise denied(principal, actions, model)


def denied(
    principal: Principal, actions: tuple[str, ...], model: str | None
) -> PermissionDeniedError:
    """The 403 for ``principal`` lacking every one of ``actions`` on ``model``."""
    wanted = [f"{a}:{model}" if model is not None else a for a in actions]
    needed = " or ".join(wanted)
    return PermissionDeniedError(
        f"API key {principal.name!r} lacks the scope this request needs: {needed} (or admin)",
        scope=wanted[0],
        model=model,
    )


def principal_of(scope: Scope) -> Principal | None:
    """The request's authenticated key (None when the server runs without keys)."""
    found = scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def visible(scope: Scope, actions: tuple[str, ...], names: Iterable[str]) -> list[str]:
    """Those of ``names`` the request's key may do one of ``actions`` on (all of them
    without keys): what listings show."""
    principal = principal_of(scope)
    if principal is None:
        return list(names)
    return [name for name in names if allows(principal, actions, name)]
