"""What the Deployments pages show and the actions they take (called in a thread).

The numbers per arm are the ones ``GET /api/deployments/{name}/status`` and
``/compare`` answer (``server.http.deployment_results``): traffic, errors, p50/p99 and
live accuracy from the prediction log, and each shadow's agreement with the champion.
The rollout is the state the controller keeps (``rollout.records``), with its steps
and the decisions and numbers behind them. The actions are the registry calls of the
REST routes (promote, rollback, set weight) and of ``modelport deploy resume`` (pause,
resume), made by a registry acting as the signed-in key, so the audit trail names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelport.domain.deployments import Deployment, DeploymentEvent
from modelport.domain.rollout_plan import RolloutState
from modelport.errors import InvalidArgumentError, ModelportError
from modelport.registry.service import RegistryService
from modelport.rollout.controller import RolloutController
from modelport.rollout.records import RolloutRecords
from modelport.server.http.deployment_results import compare_document, status_document

ACTIONS = ("promote", "rollback", "weight", "pause", "resume")
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
    loaded = RolloutRecords(registry, lambda: datetime.now(UTC)).load(name)
    rollout = loaded[0] if loaded is not None else None
    history = registry.deployment_history(name, 20)
    return DeploymentView(deployment, since, arms, shadows, rollout, history, notes)


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
    if action in ("pause", "resume"):
        if controllers is None:
            raise InvalidArgumentError("this control plane cannot change rollouts")
        from modelport.rollout.commands import pause_rollout, resume_rollout

        controller = controllers(registry)
        change = pause_rollout if action == "pause" else resume_rollout
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
    raise InvalidArgumentError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
