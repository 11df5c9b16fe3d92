"""What the Deployments pages show and the actions they take (called in a thread).

The numbers per arm are the ones ``GET /api/deployments/{name}/status`` and
``/compare`` answer (``server.http.deployment_results``): traffic, errors, p50/p99 and
live accuracy from the prediction log, and each shadow's agreement with the champion.
The rollout is the state the controller keeps (``rollout.records``), with its steps
and the decisions and numbers behind them. The actions are the registry calls of the
REST routes (promote, rollback, set weight) and of ``modelport deploy pause|resume|abort``,
made by a registry acting as the signed-in key, so the audit trail names it. While a
rollout owns the deployment's canary (running or paused), promote and set weight are
refused (409): the controller sets the weights; pause or abort the rollout instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelport.domain.deployments import Deployment, DeploymentEvent
from modelport.domain.rollout_plan import RolloutState
from modelport.errors import ConflictError, InvalidArgumentError, ModelportError
from modelport.registry.service import RegistryService
from modelport.rollout.controller import RolloutController
from modelport.rollout.records import RolloutRecords
from modelport.server.http.deployment_results import compare_document, status_document

ACTIONS = ("promote", "rollback", "weight", "pause", "resume", "abort")
ROLLOUT_ACTIONS = ("pause", "resume", "abort")
CONTROLLED = ("promote", "weight")  # what the rollout controller does itself
WINDOWS = ("15m", "1h", "6h", "24h", "7d")
ControllerFactory = Callable[[RegistryService], RolloutController]


@dataclass(frozen=True)
class DeploymentView:
    """A deployment's page: its arms with their numbers, shadows, rollout and history."""

    deployment: Deployment
    since: str
    arms: list[dict[str, Any]]
    shadows: list[dict[str, Any]]
    rollout: RolloutState | None
    history: list[DeploymentEvent]
    notes: list[str] = field(default_factory=list)


def deployment_rows(registry: RegistryService, readable: Callable[[str], bool]) -> list[Deployment]:
    """The deployments the viewer may read, by name."""
    return [d for d in registry.list_deployments() if readable(d.name)]


def deployment_view(
    registry: RegistryService, log_uri: str | None, name: str, since: str
) -> DeploymentView:
    """The page of deployment ``name`` over the last ``since`` (one of ``WINDOWS``)."""
    if since not in WINDOWS:
        raise InvalidArgumentError(f"window {since!r} is not one of {', '.join(WINDOWS)}")
    deployment = registry.get_deployment(name)
    notes: list[str] = []
    arms = [{**arm.to_dict(), "requests": None} for arm in deployment.arms]
    shadows: list[dict[str, Any]] = []
    if log_uri is None:
        notes.append("This control plane has no prediction log: no live numbers.")
    else:
        try:
            arms = status_document(log_uri, deployment, {"since": since})["arms"]
            if deployment.shadow_arms:
                shadows = compare_document(log_uri, deployment, {"since": since, "top": "0"})[
                    "shadows"
                ]
        except ModelportError as exc:
            notes.append(f"No live numbers: {exc.message}")
    rollout = rollout_of(registry, name)
    history = registry.deployment_history(name, 20)
    return DeploymentView(deployment, since, arms, shadows, rollout, history, notes)


def rollout_of(registry: RegistryService, name: str) -> RolloutState | None:
    """The stored rollout of deployment ``name``, or None."""
    loaded = RolloutRecords(registry, lambda: datetime.now(UTC)).load(name)
    return loaded[0] if loaded is not None else None


def refuse_while_rolling_out(registry: RegistryService, name: str, action: str) -> None:
    """``ConflictError`` when ``action`` (promote, set weight) would fight the rollout
    that owns deployment ``name``'s canary."""
    if action not in CONTROLLED:
        return
    rollout = rollout_of(registry, name)
    if rollout is None or not rollout.status.active:
        return
    instead = "pause or abort" if rollout.status.value == "running" else "resume or abort"
    raise ConflictError(
        f"deployment {name!r} has a rollout of {rollout.model}/{rollout.version} "
        f"{rollout.status.value} at {rollout.weight:g}%: its controller sets the weights and "
        f"promotes; {instead} the rollout instead (`modelport deploy "
        f"{instead.split(maxsplit=1)[0]}|abort {name}`)"
    )


def act(
    registry: RegistryService,
    controllers: ControllerFactory | None,
    name: str,
    action: str,
    form: Mapping[str, str],
) -> str:
    """Take ``action`` on deployment ``name`` with the confirmed form's values; what
    happened, in words."""
    reason = form.get("reason") or None
    refuse_while_rolling_out(registry, name, action)
    if action == "promote":
        arm = form.get("arm") or None
        done = registry.promote_deployment(name, arm, reason=reason)
        return f"Promoted: {done.champion.ref} is the champion on 100% (revision {done.revision})."
    if action == "rollback":
        done = registry.rollback_deployment(name, reason=reason)
        return f"Rolled back: {done.champion.ref} is the champion (revision {done.revision})."
    if action == "weight":
        arm, weight = form.get("arm", ""), _weight(form.get("weight"))
        done = registry.set_arm_weight(name, arm, weight, reason=reason)
        return f"Arm {arm} now takes {weight:g}% of the traffic (revision {done.revision})."
    if action in ROLLOUT_ACTIONS:
        if controllers is None:
            raise InvalidArgumentError("this control plane cannot change rollouts")
        from modelport.rollout.commands import abort_rollout, pause_rollout, resume_rollout

        controller = controllers(registry)
        change = {"pause": pause_rollout, "resume": resume_rollout, "abort": abort_rollout}[action]
        try:
            state = change(controller, name, reason=reason)
        finally:
            controller.close()
        return f"Rollout {state.status.value}: {state.message}"
    raise InvalidArgumentError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")


def _weight(text: str | None) -> float:
    try:
        weight = float(text or "")
    except ValueError:
        weight = -1.0
    if not 0 <= weight <= 100:
        raise InvalidArgumentError(
            f"weight {text!r} is not a percentage from 0 to 100", field="weight"
        )
    return weight


def describe_action(deployment: Deployment, action: str, form: Mapping[str, str]) -> str:
    """What confirming ``action`` will do, in words, for the confirmation page."""
    champion = deployment.champion
    if action == "promote":
        arm = form.get("arm") or (deployment.candidates[0].name if deployment.candidates else "")
        found = [a for a in deployment.arms if a.name == arm]
        target = found[0].ref if found else arm
        return f"Make {target} (arm {arm}) the champion of {deployment.name} on 100% of traffic."
    if action == "rollback":
        return f"Roll {deployment.name} back from {champion.ref} to its last good champion."
    if action == "weight":
        return (
            f"Send {form.get('weight', '?')}% of {deployment.name}'s traffic to arm "
            f"{form.get('arm', '?')}; the champion takes the rest."
        )
    if action == "pause":
        return f"Hold the rollout on {deployment.name} at its current step."
    if action == "resume":
        return f"Resume the paused rollout on {deployment.name}."
    if action == "abort":
        return (
            f"Stop the rollout on {deployment.name} and send all its traffic back to "
            f"{champion.ref}."
        )
    raise InvalidArgumentError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
