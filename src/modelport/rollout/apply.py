"""Making the deployment follow the rollout's state.

The state is decided and stored first; then the deployment is changed to match it,
through ``RegistryService.change_deployment`` (audited, with the decision's numbers as
details) or ``promote_deployment`` (which runs the promotion gates). Applying is
idempotent: a controller that stopped between the two writes leaves a state that the
next controller applies again.

- running or paused: the canary arm (the rollout's model version) gets the step's
  weight once, when the step starts (a person may change it after; the next step sets
  it again); a canary that left the deployment by other hands ends the rollout;
- promoted: the canary becomes the champion (gates refusing it pause the rollout);
- rolled back or aborted: the canary arm leaves, its weight goes back to the champion,
  which the rollout never replaced: the last good champion answers everything again.

Serving processes follow the stored deployment within their ``poll_interval_s``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelport.domain.deployments import Arm, Deployment, with_weight, without_arm
from modelport.domain.rollout_plan import RolloutState, RolloutStatus
from modelport.errors import GateFailedError

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService

_SAME_WEIGHT = 1e-9


def canary_arm(deployment: Deployment, state: RolloutState) -> Arm | None:
    """The live candidate arm serving the rollout's version, or None."""
    for arm in deployment.candidates:
        if (arm.model, arm.version) == (state.model, state.version):
            return arm
    return None


def apply_state(
    registry: RegistryService,
    state: RolloutState,
    *,
    action: str,
    details: Mapping[str, Any],
) -> tuple[RolloutState, Deployment]:
    """Change the deployment to match ``state``; the state afterwards (applied, or
    stopped when that is impossible) and the deployment."""
    deployment = registry.get_deployment(state.deployment)
    arm = canary_arm(deployment, state)
    if state.status.active and arm is None:
        stopped = (
            f"the canary {state.model}/{state.version} left deployment "
            f"{state.deployment!r} outside the rollout; the rollout stopped"
        )
        return replace(state, status=RolloutStatus.ABORTED, message=stopped), deployment
    if state.applied or arm is None:
        return replace(state, applied=True), deployment
    reason = f"rollout of {state.model}/{state.version}: {state.message}"
    if state.status is RolloutStatus.PROMOTED:
        return _promote(registry, state, arm, reason)
    if state.status.active:
        change: Callable[[Deployment], Deployment] = _weighted(arm.name, state.weight)
        if abs(arm.weight - state.weight) <= _SAME_WEIGHT:
            return replace(state, applied=True), deployment
    else:  # rolled back or aborted: the canary leaves, the champion takes its weight
        change = _removed(arm.name)
    deployment = registry.change_deployment(
        state.deployment,
        change,
        action=action,
        reason=reason,
        details=details,
        expected_revision=deployment.revision,
    )
    return replace(state, applied=True), deployment


def _weighted(name: str, weight: float) -> Callable[[Deployment], Deployment]:
    return lambda deployment: with_weight(deployment, name, weight)


def _removed(name: str) -> Callable[[Deployment], Deployment]:
    return lambda deployment: without_arm(deployment, name)


def _promote(
    registry: RegistryService, state: RolloutState, arm: Arm, reason: str
) -> tuple[RolloutState, Deployment]:
    try:
        deployment = registry.promote_deployment(state.deployment, arm.name, reason=reason)
    except GateFailedError as exc:
        paused = replace(
            state,
            status=RolloutStatus.PAUSED,
            applied=True,
            message=f"the promotion gates refused {state.model}/{state.version}: {exc.message}",
        )
        return paused, registry.get_deployment(state.deployment)
    return replace(state, applied=True), deployment
