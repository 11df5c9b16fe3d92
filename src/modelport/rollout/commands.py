"""What a person does to a rollout: start it, pause it, resume it, abort it.

``start`` puts the candidate on the first step's weight as the deployment's canary and
stores the running state; the controller (in the foreground of ``deploy rollout``, or
``deploy controller``) takes it from there. ``resume`` turns a paused (inconclusive)
rollout back on, its failures forgotten and its current step judged afresh. ``abort``
stops a running or paused rollout and sends all traffic back to the champion. Each is
audited and announced like the controller's own decisions; ``abort`` wins over a
controller acting at the same moment (the controller's compare-and-set then fails).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelport.config import format_duration
from modelport.domain.deployments import Deployment, with_canary
from modelport.domain.rollout_plan import RolloutPlan, RolloutState, RolloutStatus
from modelport.errors import ConflictError, InvalidArgumentError, ModelportError, NotFoundError
from modelport.rollout.controller import RolloutController
from modelport.rollout.transitions import announcement

_ABORT_ATTEMPTS = 5  # re-reads when a controller writes the state at the same moment


def start_rollout(
    controller: RolloutController,
    name: str,
    version: int,
    plan: RolloutPlan,
    *,
    model: str | None = None,
    reason: str | None = None,
) -> RolloutState:
    """Start rolling ``model/version`` (model: the champion's) out on deployment ``name``."""
    registry, records = controller.registry, controller.records
    deployment = registry.get_deployment(name)
    model = model or deployment.champion.model
    registry.get_version(model, version)  # VersionNotFoundError names what exists
    _check_startable(deployment, model, version)
    if not records.acquire(name, controller.owner, controller.lease_ttl):
        raise ConflictError(
            f"another controller is acting on deployment {name!r}'s rollout; try again in "
            f"{format_duration(controller.lease_ttl)}"
        )
    try:
        loaded = records.load(name)
        if loaded is not None and loaded[0].status.active:
            raise ConflictError(_under_way(loaded[0]))
        state = _first_step(controller, deployment, model, version, plan=plan, reason=reason)
        expected = loaded[1] if loaded is not None else 0
        return _store_and_apply(controller, state, expected, deployment.revision, reason)
    finally:
        records.release(name, controller.owner)


def _check_startable(deployment: Deployment, model: str, version: int) -> None:
    champion = deployment.champion
    if (champion.model, champion.version) == (model, version):
        raise InvalidArgumentError(
            f"{model}/{version} already is the champion of deployment {deployment.name!r}",
            field="version",
        )
    if deployment.candidates:
        arms = ", ".join(f"{a.name} ({a.ref})" for a in deployment.candidates)
        raise ConflictError(
            f"deployment {deployment.name!r} already has a candidate arm: {arms}; promote, "
            "roll back or remove it before starting a rollout"
        )


def _first_step(
    controller: RolloutController,
    deployment: Deployment,
    model: str,
    version: int,
    *,
    plan: RolloutPlan,
    reason: str | None,
) -> RolloutState:
    now = controller.now()
    champion = deployment.champion
    state = RolloutState(
        deployment=deployment.name,
        model=model,
        version=version,
        plan=plan,
        status=RolloutStatus.RUNNING,
        step=0,
        step_started_at=now,
        next_check_at=now + plan.interval,
        started_at=now,
        champion=(champion.model, champion.version),
        message=f"started at {plan.trial_steps[0]:g}%",
        applied=False,
    )
    return state.with_decision(_by_person(state, "start", reason, now.isoformat()))


def _store_and_apply(
    controller: RolloutController,
    state: RolloutState,
    expected_revision: int,
    deployment_revision: int,
    reason: str | None,
) -> RolloutState:
    """Store the new rollout, then put its canary on the deployment (a failure there
    leaves the rollout recorded as not started)."""
    records, name = controller.records, state.deployment
    revision = records.save(state, expected_revision=expected_revision)
    if revision is None:
        raise ConflictError(f"another rollout of deployment {name!r} started at the same moment")
    details = announcement(state, None, owner=controller.owner, time=state.started_at)
    model, version, weight = state.model, state.version, state.weight
    try:
        controller.registry.change_deployment(
            name,
            lambda d: with_canary(d, model, version, weight),
            action="rollout.start",
            reason=reason,
            details=details,
            expected_revision=deployment_revision,
        )
    except ModelportError as exc:
        failed = replace(state, status=RolloutStatus.ABORTED, message=f"not started: {exc}")
        records.save(failed, expected_revision=revision)
        raise
    started = replace(state, applied=True)
    stored = records.save(started, expected_revision=revision)
    controller.announce(started, details, stored if stored is not None else revision)
    return started


def resume_rollout(
    controller: RolloutController, name: str, *, reason: str | None = None
) -> RolloutState:
    """Turn a paused rollout back on (a running one is returned as it is)."""
    state, revision = _load(controller, name)
    if state.status is RolloutStatus.RUNNING:
        return state
    if state.status is not RolloutStatus.PAUSED:
        raise ConflictError(
            f"the rollout of {state.model}/{state.version} on deployment {name!r} is "
            f"{state.status.value}: there is nothing to resume (start a new one with "
            "`deploy rollout`)"
        )
    now = controller.now()
    resumed = state.with_decision(
        _by_person(state, "resume", reason, now.isoformat()),
        status=RolloutStatus.RUNNING,
        failures=0,
        step_started_at=now,
        next_check_at=now + state.plan.interval,
        message=f"resumed by {controller.registry.actor} at {state.weight:g}%",
    )
    stored = controller.records.save(resumed, expected_revision=revision)
    if stored is None:
        raise ConflictError(f"the rollout of deployment {name!r} changed meanwhile; try again")
    details = announcement(resumed, None, owner=controller.owner, time=now)
    deployment = controller.registry.get_deployment(name)
    controller.records.audit(deployment, "rollout.resume", reason=reason, details=details)
    controller.announce(resumed, details, stored)
    return resumed


def pause_rollout(
    controller: RolloutController, name: str, *, reason: str | None = None
) -> RolloutState:
    """Hold a running rollout where it is (a paused one is returned as it is): the canary
    keeps its weight and the controller makes no decision until ``resume_rollout``."""
    state, revision = _load(controller, name)
    if state.status is RolloutStatus.PAUSED:
        return state
    if state.status is not RolloutStatus.RUNNING:
        raise ConflictError(
            f"the rollout of {state.model}/{state.version} on deployment {name!r} is "
            f"{state.status.value}: there is nothing to pause"
        )
    now = controller.now()
    paused = state.with_decision(
        _by_person(state, "pause", reason, now.isoformat()),
        status=RolloutStatus.PAUSED,
        message=f"paused by {controller.registry.actor} at {state.weight:g}%"
        + (f": {reason}" if reason else ""),
    )
    stored = controller.records.save(paused, expected_revision=revision)
    if stored is None:
        raise ConflictError(f"the rollout of deployment {name!r} changed meanwhile; try again")
    details = announcement(paused, None, owner=controller.owner, time=now)
    deployment = controller.registry.get_deployment(name)
    controller.records.audit(deployment, "rollout.pause", reason=reason, details=details)
    controller.announce(paused, details, stored)
    return paused


def abort_rollout(
    controller: RolloutController, name: str, *, reason: str | None = None
) -> RolloutState:
    """Stop a running or paused rollout and give all traffic back to the champion."""
    for _ in range(_ABORT_ATTEMPTS):
        state, revision = _load(controller, name)
        if not state.status.active:
            raise ConflictError(
                f"the rollout of {state.model}/{state.version} on deployment {name!r} has "
                f"already ended: {state.status.value}"
            )
        now = controller.now()
        aborted = state.with_decision(
            _by_person(state, "abort", reason, now.isoformat()),
            status=RolloutStatus.ABORTED,
            applied=False,
            message=f"aborted by {controller.registry.actor}" + (f": {reason}" if reason else ""),
        )
        stored = controller.records.save(aborted, expected_revision=revision)
        if stored is not None:
            details = announcement(aborted, None, owner=controller.owner, time=now)
            after, stored = controller.settle(
                aborted, stored, action="rollout.abort", details=details
            )
            controller.announce(after, details, stored)
            return after
    raise ConflictError(f"the rollout of deployment {name!r} kept changing; try again")


def _load(controller: RolloutController, name: str) -> tuple[RolloutState, int]:
    controller.registry.get_deployment(name)  # DeploymentNotFoundError first
    loaded = controller.records.load(name)
    if loaded is None:
        raise NotFoundError(
            f"deployment {name!r} has no rollout (start one with `modelport deploy rollout "
            f"{name} --version N`)"
        )
    return loaded


def _under_way(state: RolloutState) -> str:
    return (
        f"deployment {state.deployment!r} has a rollout of {state.model}/{state.version} "
        f"{state.status.value} at {state.weight:g}%: resume or abort it first"
    )


def _by_person(state: RolloutState, verdict: str, reason: str | None, time: str) -> dict[str, Any]:
    return {
        "time": time,
        "step": state.step,
        "weight": state.weight,
        "verdict": verdict,
        "reason": reason or "",
    }


def rollout_status(controller: RolloutController, name: str) -> RolloutState:
    """The stored rollout of deployment ``name`` (``NotFoundError`` when it has none)."""
    return _load(controller, name)[0]
