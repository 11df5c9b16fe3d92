"""The control plane's rollout routes: what ``modelport deploy rollout|pause|resume|
abort|progress|controller`` do when ``MODELPORT_REGISTRY_URL`` points the CLI here.

A person's commands (start, pause, resume, abort) are the calls of ``rollout.commands``
on the controller the CLI builds (``ServerContext.rollouts``), over a registry acting as
the calling key, so the audit trail names the key and the reason. The controller itself
runs where its caller is: the CLI keeps the clock and asks for one tick every poll
(``POST .../rollout/tick``, ``/api/rollouts/tick``); the control plane evaluates the tick
under the caller's lease owner (``<key's actor>/<owner the caller sent>``), so two
callers hold two owners and the controller's lease keeps them from deciding twice, and a
caller that stops gives its leases back (``.../release``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, ClassVar

from modelport.domain.rollout_plan import RolloutPlan
from modelport.errors import InvalidArgumentError, InvalidRequestError, UnsupportedOperationError
from modelport.registry.service import RegistryService
from modelport.rollout import commands
from modelport.rollout.controller import RolloutController, StepOutcome
from modelport.server.http.access import Access, principal_of
from modelport.server.http.app import POST, RouteTable
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint, field_of

MAX_OWNER = 128
Act = Callable[[RolloutController], Any]


class RolloutEndpoint(RegistryEndpoint):
    """Base of the rollout routes: a controller over the registry acting as the key."""

    async def control(self, scope: Scope, act: Act, *, owner: str | None = None) -> Any:
        """``act`` on a controller (leases held by ``owner``; None: a fresh owner) in a
        thread; the controller's queued webhook posts are delivered before the answer."""
        factory, get_registry = self.context.rollouts, self.context.registry
        if factory is None or get_registry is None:
            raise UnsupportedOperationError("this server does not drive rollouts")
        principal = principal_of(scope)

        def run() -> Any:
            registry: RegistryService = get_registry()
            if principal is not None:
                registry = registry.acting_as(principal.actor)
            controller = factory(registry, owner)
            try:
                return act(controller)
            finally:
                controller.close()

        return await asyncio.to_thread(run)

    def owner(self, scope: Scope, data: dict[str, Any]) -> str:
        """The lease owner for the caller's ``owner`` field, under the key's name (a
        caller cannot take over another key's leases)."""
        text = field_of(data, "owner", str, required=True)
        if not 0 < len(text) <= MAX_OWNER:
            raise InvalidRequestError(
                f"owner must be 1 to {MAX_OWNER} characters, not {len(text)}", field="owner"
            )
        principal = principal_of(scope)
        return f"{principal.actor if principal is not None else 'anonymous'}/{text}"


class ApiRollout(RolloutEndpoint):
    """GET /api/deployments/{name}/rollout: the rollout's state (404: none);
    POST: start one ``{"version": 4, "plan": {...}, "model"?: ..., "reason"?: ...}``."""

    access = Access(("read",), "name", writes=("deploy",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        if scope["method"] in ("GET", "HEAD"):
            found = await self.control(scope, lambda c: commands.rollout_status(c, name))
            return Reply.json(found.to_dict())
        data = await self.json_body(scope, receive, ("version", "plan", "model", "reason"))
        version = field_of(data, "version", int, required=True)
        model, reason = field_of(data, "model", str), field_of(data, "reason", str)
        plan = plan_of(field_of(data, "plan", dict, required=True))
        started = await self.control(
            scope,
            lambda c: commands.start_rollout(c, name, version, plan, model=model, reason=reason),
        )
        return Reply.json(started.to_dict(), status=201)


class _Command(RolloutEndpoint):
    """POST /api/deployments/{name}/rollout/VERB ``{"reason"?: ...}``: the state after."""

    access = Access(("deploy",), "name")
    command: ClassVar[Callable[..., Any]]

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        reason = field_of(await self.json_body(scope, receive, ("reason",)), "reason", str)
        command = type(self).command
        after = await self.control(scope, lambda c: command(c, name, reason=reason))
        return Reply.json(after.to_dict())


class ApiRolloutPause(_Command):
    """POST .../rollout/pause: hold a running rollout at its step."""

    command = staticmethod(commands.pause_rollout)


class ApiRolloutResume(_Command):
    """POST .../rollout/resume: turn a paused rollout back on."""

    command = staticmethod(commands.resume_rollout)


class ApiRolloutAbort(_Command):
    """POST .../rollout/abort: stop the rollout, all traffic back to the champion."""

    command = staticmethod(commands.abort_rollout)


class ApiRolloutTick(RolloutEndpoint):
    """POST /api/deployments/{name}/rollout/tick ``{"owner": ...}``: one controller tick
    of this rollout (``deploy rollout`` following it)."""

    access = Access(("deploy",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        owner = self.owner(scope, await self.json_body(scope, receive, ("owner",)))
        outcome = await self.control(scope, lambda c: c.tick(name), owner=owner)
        return Reply.json({"outcomes": [outcome_document(outcome)]})


class ApiRolloutRelease(RolloutEndpoint):
    """POST /api/deployments/{name}/rollout/release ``{"owner": ...}``: give up the
    caller's lease on this rollout (``deploy rollout`` stops following it)."""

    access = Access(("deploy",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        owner = self.owner(scope, await self.json_body(scope, receive, ("owner",)))
        await self.control(scope, lambda c: c.records.release(name, c.owner), owner=owner)
        return Reply.json({"released": owner, "deployment": name})


class ApiRolloutsTick(RolloutEndpoint):
    """POST /api/rollouts/tick ``{"owner": ...}``: one controller tick of every rollout
    (``deploy controller``)."""

    access = Access(("deploy",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        owner = self.owner(scope, await self.json_body(scope, receive, ("owner",)))
        outcomes = await self.control(scope, lambda c: c.tick_all(), owner=owner)
        return Reply.json({"outcomes": [outcome_document(o) for o in outcomes]})


class ApiRolloutsRelease(RolloutEndpoint):
    """POST /api/rollouts/release ``{"owner": ...}``: give up the caller's leases, so
    that another controller takes over at once."""

    access = Access(("deploy",))

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        owner = self.owner(scope, await self.json_body(scope, receive, ("owner",)))
        await self.control(scope, lambda c: c.release_all(), owner=owner)
        return Reply.json({"released": owner})


def plan_of(data: dict[str, Any]) -> RolloutPlan:
    """A rollout plan from its JSON form (``RolloutPlan.to_dict``), its errors named."""
    try:
        return RolloutPlan.from_dict(data)
    except InvalidArgumentError as exc:
        raise InvalidRequestError(f"plan: {exc.message}", field="plan") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequestError(
            f"plan must be a rollout plan (steps, interval, bake, min_requests, "
            f"max_failures, max_wait, thresholds): {type(exc).__name__}: {exc}"[:500],
            field="plan",
        ) from None


def outcome_document(outcome: StepOutcome) -> dict[str, Any]:
    """One tick's outcome: the line ``--json`` prints and the full state after it."""
    line = json.loads(json.dumps(outcome.to_dict(), default=str))
    state = outcome.state.to_dict() if outcome.state is not None else None
    return {"outcome": line, "state": state}


_ROLLOUT = "/api/deployments/{name}/rollout"

ROLLOUT_ROUTES: RouteTable = (
    (_ROLLOUT, ("GET", "POST"), ApiRollout),
    (f"{_ROLLOUT}/pause", POST, ApiRolloutPause),
    (f"{_ROLLOUT}/resume", POST, ApiRolloutResume),
    (f"{_ROLLOUT}/abort", POST, ApiRolloutAbort),
    (f"{_ROLLOUT}/tick", POST, ApiRolloutTick),
    (f"{_ROLLOUT}/release", POST, ApiRolloutRelease),
    ("/api/rollouts/tick", POST, ApiRolloutsTick),
    ("/api/rollouts/release", POST, ApiRolloutsRelease),
)
