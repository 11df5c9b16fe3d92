"""A rollout controller built from the settings: numbers from the prediction log,
decisions posted to ``[[rollout.webhooks]]``, the lease time of ``[rollout]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelport.config import Settings
from modelport.rollout.controller import RolloutController
from modelport.rollout.notify import DecisionNotifier
from modelport.rollout.numbers import VersionLogNumbers

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService


def build_controller(
    settings: Settings, registry: RegistryService, *, owner: str | None = None
) -> RolloutController:
    """The controller the CLI runs (``deploy rollout|resume|abort|controller``), and the
    control plane for a remote caller (``owner``: the caller's lease name; None: one
    unique to this controller)."""
    return RolloutController(
        registry,
        VersionLogNumbers(settings.resolved_prediction_log_uri, registry),
        owner=owner,
        notifier=DecisionNotifier(settings.rollout.webhooks, policy=settings.outgoing.policy()),
        lease_ttl=settings.rollout.lease_ttl,
    )
