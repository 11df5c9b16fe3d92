"""``/api/deployments``: read and change deployments over HTTP, with the verbs of
``modelport deploy``.

Each request calls the registry (``ServerContext.registry``) in a thread, so the event
loop keeps answering inference meanwhile; every change is the same audited registry
write the CLI makes, recorded under the server's user (``MODELPORT_USER``). Every
server following a deployment picks a change up at its next poll, whichever replica
received it.

Errors are ``{"error": MESSAGE, "code": CODE, ...}`` with the error's fields (the
deployment, the revisions of a stale write, a refusing gate's report) and the status
of its kind: 400 bad input, 404 unknown deployment or version, 409 stale revision,
existing name or failed gate, 415 not JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from modelport.domain.deployments import Deployment
from modelport.errors import InvalidRequestError
from modelport.registry.service import RegistryService
from modelport.server.http import deployment_bodies as bodies
from modelport.server.http.access import Access, visible
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

Call = Callable[[RegistryService], Any]


class DeploymentEndpoint(RegistryEndpoint):
    """Base of the deployment routes: the registry in a thread, acting as the request's
    key (``RegistryEndpoint.call``), errors with their fields."""

    async def body(self, scope: Scope, receive: Receive, verb: str) -> dict[str, Any]:
        """The request's JSON object, checked against the fields ``verb`` takes."""
        limit = self.context.settings.max_body_bytes
        return await bodies.read_json_body(scope, receive, limit, verb)


class ApiDeployments(DeploymentEndpoint):
    """GET /api/deployments: every deployment, by name."""

    access = Access(("read",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        deployments = await self.call(scope, lambda registry: registry.list_deployments())
        readable = set(visible(scope, ("read",), [d.name for d in deployments]))
        return Reply.json({"deployments": [d.to_dict() for d in deployments if d.name in readable]})


class ApiDeployment(DeploymentEndpoint):
    """GET, PUT (create: ``{"version": 3, "model": ...}``), DELETE /api/deployments/{name}."""

    access = Access(("read",), "name", writes=("deploy",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        method = scope["method"]
        if method in ("GET", "HEAD"):  # the router answers HEAD wherever it answers GET
            found = await self.call(scope, lambda registry: registry.get_deployment(name))
            return Reply.json(found.to_dict())
        if method == "DELETE":
            reason = _query(scope, ("reason",)).get("reason") or None
            await self.call(scope, lambda registry: registry.delete_deployment(name, reason=reason))
            return Reply.json({"deleted": {"deployment": name}})
        data = await self.body(scope, receive, "create")
        version, model = bodies.integer(data, "version"), bodies.text(data, "model")
        reason = bodies.text(data, "reason")
        created = await self.call(
            scope,
            lambda registry: registry.create_deployment(name, version, model=model, reason=reason),
        )
        return Reply.json(created.to_dict(), status=201)


class ApiDeploymentHistory(DeploymentEndpoint):
    """GET /api/deployments/{name}/history[?limit=N]: its changes, newest first."""

    access = Access(("read",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        limit = _limit(_query(scope, ("limit",)).get("limit"))
        events = await self.call(scope, lambda registry: registry.deployment_history(name, limit))
        return Reply.json({"deployment": name, "events": [e.to_dict() for e in events]})


class ApiDeploymentArm(DeploymentEndpoint):
    """DELETE /api/deployments/{name}/arms/{arm}[?reason=...]: remove a candidate or shadow."""

    access = Access(("deploy",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, arm = scope["path_params"]["name"], scope["path_params"]["arm"]
        reason = _query(scope, ("reason",)).get("reason") or None
        changed = await self.call(
            scope, lambda registry: registry.remove_arm(name, arm, reason=reason)
        )
        return Reply.json(changed.to_dict())


class _Change(DeploymentEndpoint):
    """POST /api/deployments/{name}/VERB with a JSON body: one change, the deployment after."""

    access = Access(("deploy",), "name")

    verb: ClassVar[str]

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        data = await self.body(scope, receive, self.verb)
        change = self.change(name, data, bodies.text(data, "reason"))
        changed: Deployment = await self.call(scope, change)
        return Reply.json(changed.to_dict())

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        """The registry call the body asks for (its fields checked here, before it runs)."""
        raise NotImplementedError


class ApiCanary(_Change):
    """POST .../canary ``{"version": 4, "weight": 10, "model"?: ...}``."""

    verb = "canary"

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        version, weight = bodies.integer(data, "version"), bodies.number(data, "weight")
        model = bodies.text(data, "model")
        return lambda r: r.deploy_canary(name, version, weight, model=model, reason=reason)


class ApiAb(_Change):
    """POST .../ab ``{"arms": [{"version": 3, "weight": 50}, ...], "sticky"?: ...}``."""

    verb = "ab"

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        arms, sticky = bodies.arms(data), bodies.text(data, "sticky")
        model = bodies.text(data, "model")
        return lambda r: r.deploy_ab(name, arms, sticky=sticky, model=model, reason=reason)


class ApiShadow(_Change):
    """POST .../shadow ``{"version": 5, "sample": 0.5, "model"?: ...}``."""

    verb = "shadow"

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        version, sample = bodies.integer(data, "version"), bodies.number(data, "sample")
        model = bodies.text(data, "model")
        return lambda r: r.deploy_shadow(name, version, sample, model=model, reason=reason)


class ApiWeights(_Change):
    """POST .../weights ``{"arm": "canary", "weight": 25}``."""

    verb = "weights"

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        arm, weight = bodies.text(data, "arm"), bodies.number(data, "weight")
        assert arm is not None  # required, checked with the body
        return lambda r: r.set_arm_weight(name, arm, weight, reason=reason)


class ApiPromote(_Change):
    """POST .../promote ``{"arm"?: ..., "skip_gates"?: REASON}``."""

    verb = "promote"

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        arm, skip = bodies.text(data, "arm"), bodies.text(data, "skip_gates")
        return lambda r: r.promote_deployment(name, arm, skip_gates=skip, reason=reason)


class ApiRollback(_Change):
    """POST .../rollback ``{"reason"?: ...}``."""

    verb = "rollback"

    def change(self, name: str, data: dict[str, Any], reason: str | None) -> Call:
        return lambda r: r.rollback_deployment(name, reason=reason)


def _query(scope: Scope, accepted: tuple[str, ...]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    unknown = sorted(set(raw) - set(accepted))
    if unknown:
        raise InvalidRequestError(
            f"unknown query parameter(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    return {key: values[-1] for key, values in raw.items()}


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    limit = int(value) if value.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {value!r}", field="limit"
        )
    return limit
