"""Deployments in the registry: create, change, promote, roll back and delete them.

Every change is one metadata transaction: read the deployment, apply a pure change from
``domain.deployments``, check that each arm's version exists and is not archived, store
it with a compare-and-set on its revision (``StaleDeploymentError`` when someone else
changed it since), and record both an audit entry (``target="deployment:<name>"``, the
spec before and after) and a deployment event (the history, with the reason and the
numbers behind the change). Only after the commit is ``deployment.changed`` emitted.

``promote`` runs the promotion gates guarding ``production`` on the candidate first
(outside the transaction: gates load models); ``skip_gates`` skips them and the reason
is recorded in the audit entry and the history. When ``[signing] require_signed`` names
production, the candidate's model signature must verify first (``registry.signatures``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from modelport.domain.deployments import (
    Deployment,
    DeploymentEvent,
    NewDeploymentEvent,
    new_deployment,
    parse_sticky,
    promoted,
    rolled_back,
    validate_deployment,
    with_ab,
    with_canary,
    with_shadow,
    with_weight,
    without_arm,
)
from modelport.domain.entities import ModelVersion, VersionStatus
from modelport.errors import DeploymentNotFoundError, InvalidArgumentError
from modelport.metadata.store import MetadataSession, stale_deployment
from modelport.registry.context import RegistryContext
from modelport.registry.lookups import require_version
from modelport.registry.signatures import check_policy

EVENT = "deployment.changed"
PRODUCTION = "production"  # the target the gates guard when a deployment is promoted

Change = Callable[[Deployment], Deployment]


class Deployments:
    """Reads and audited writes of deployments (exposed as ``RegistryService`` methods)."""

    def __init__(self, context: RegistryContext) -> None:
        self._context = context

    # ---------------------------------------------------------------------- reading

    def find(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None."""
        with self._context.metadata.reader() as tx:
            return tx.get_deployment(name)

    def get(self, name: str) -> Deployment:
        """The deployment called ``name``; ``DeploymentNotFoundError`` when there is none."""
        with self._context.metadata.reader() as tx:
            return _require(tx, name)

    def list_all(self) -> list[Deployment]:
        """Every deployment, by name."""
        with self._context.metadata.reader() as tx:
            return tx.list_deployments()

    def history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        """The deployment's changes, newest first (kept after it is deleted)."""
        if limit < 1:
            raise InvalidArgumentError("limit must be at least 1", field="limit")
        with self._context.metadata.reader() as tx:
            events = tx.list_deployment_events(name, limit=limit)
            if not events:
                _require(tx, name)
            return events

    # ---------------------------------------------------------------------- writing

    def create(
        self, name: str, version: int, *, model: str | None = None, reason: str | None = None
    ) -> Deployment:
        """A new deployment answered by ``model/version`` (model defaults to ``name``)."""
        deployment = new_deployment(name, model or name, version)
        return self._write(
            name,
            lambda _: deployment,
            action="deployment.create",
            reason=reason,
            expected_revision=0,
        )

    def canary(
        self,
        name: str,
        version: int,
        weight: float,
        *,
        model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Put ``version`` on ``weight`` percent as the canary."""
        arm_model = model or name
        return self.change(
            name,
            lambda d: with_canary(d, arm_model, version, weight),
            action="deployment.canary",
            reason=reason,
        )

    def ab(
        self,
        name: str,
        arms: Sequence[tuple[int, float]],
        *,
        sticky: str | None = None,
        model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Split live traffic between ``(version, weight)`` arms, optionally sticky."""
        key = parse_sticky(sticky) if sticky else None
        arm_model = model or name
        split = [(arm_model, version, weight) for version, weight in arms]
        return self.change(
            name, lambda d: with_ab(d, split, key), action="deployment.ab", reason=reason
        )

    def shadow(
        self,
        name: str,
        version: int,
        sample: float,
        *,
        model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Copy ``sample`` (0 < sample <= 1) of the requests to ``version``."""
        arm_model = model or name
        return self.change(
            name,
            lambda d: with_shadow(d, arm_model, version, sample),
            action="deployment.shadow",
            reason=reason,
        )

    def set_weight(
        self, name: str, arm: str, weight: float, *, reason: str | None = None
    ) -> Deployment:
        """Set a live arm's weight; the champion (or the other arm) takes the rest."""
        return self.change(
            name,
            lambda d: with_weight(d, arm, weight),
            action="deployment.set_weight",
            reason=reason,
            details={"arm": arm, "weight": weight},
        )

    def remove_arm(self, name: str, arm: str, *, reason: str | None = None) -> Deployment:
        """Remove a candidate or shadow arm; its weight goes back to the champion."""
        return self.change(
            name,
            lambda d: without_arm(d, arm),
            action="deployment.remove_arm",
            reason=reason,
            details={"arm": arm},
        )

    def promote(
        self,
        name: str,
        arm: str | None = None,
        *,
        skip_gates: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Make the candidate (the only one, or ``arm``) the champion on 100%, after the
        gates guarding production passed for it (or were skipped with a reason)."""
        if skip_gates is not None and not skip_gates.strip():
            raise InvalidArgumentError(
                "skipping the gates needs a reason (it is recorded in the audit trail)",
                field="skip_gates",
            )
        current = self.get(name)
        candidate = promoted(current, arm).champion
        version = self._version(candidate.model, candidate.version)
        signed = check_policy(self._context, version, PRODUCTION)  # [signing] require_signed
        report = self._context.check_gates(version, PRODUCTION, skip_reason=skip_gates)
        # Without ``arm`` there was exactly one candidate (``promoted`` refuses otherwise).
        details: dict[str, Any] = {"arm": arm if arm is not None else current.candidates[0].name}
        details.update(signed)
        if skip_gates is not None:
            details["gates_skipped"] = skip_gates
        elif report is not None:
            details["gates"] = report.to_dict()
        return self.change(
            name,
            lambda d: promoted(d, arm),
            action="deployment.promote",
            reason=reason,
            details=details,
            expected_revision=current.revision,  # the deployment the gates judged
        )

    def rollback(self, name: str, *, reason: str | None = None) -> Deployment:
        """Back to the last good champion (see ``domain.deployments.rolled_back``)."""
        return self.change(name, rolled_back, action="deployment.rollback", reason=reason)

    def delete(self, name: str, *, reason: str | None = None) -> None:
        """Delete a deployment and its rollout state; its history stays."""
        context = self._context
        with context.metadata.transaction() as tx:
            current = _require(tx, name)
            tx.delete_deployment(name)
            tx.delete_rollout(name)
            spec = current.spec_dict()
            context.audit(
                tx,
                "deployment.delete",
                current.champion.model,
                version=current.champion.version,
                target=_target(name),
                before=spec,
                after=_audit_after(None, reason, {}) or None,
            )
            event = tx.add_deployment_event(
                self._event(
                    name,
                    current.revision,
                    action="deployment.delete",
                    reason=reason,
                    spec=spec,
                    details={},
                )
            )
        context.emit(EVENT, _payload(event, deleted=True))

    def change(
        self,
        name: str,
        change: Change,
        *,
        action: str,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Apply ``change`` to the stored deployment and store the result as the next
        revision, audited as ``action``: the general compare-and-set write. With
        ``expected_revision``, refuse (``StaleDeploymentError``) unless the stored
        deployment is still at that revision."""
        if expected_revision is not None and expected_revision < 1:
            raise InvalidArgumentError(
                "expected_revision must be 1 or more (create a deployment with `create`)",
                field="expected_revision",
            )

        def build(current: Deployment | None) -> Deployment:
            return change(current if current is not None else _missing(name))

        return self._write(
            name,
            build,
            action=action,
            reason=reason,
            details=details,
            expected_revision=expected_revision,
        )

    # ---------------------------------------------------------------------- helpers

    def _write(
        self,
        name: str,
        build: Callable[[Deployment | None], Deployment],
        *,
        action: str,
        reason: str | None,
        details: Mapping[str, Any] | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """``build`` the next deployment from the stored one (None: there is none) and
        store it in one audited transaction, based on ``expected_revision`` (by default
        the revision just read)."""
        context = self._context
        details = dict(details or {})
        with context.metadata.transaction() as tx:
            current = tx.get_deployment(name)
            found = current.revision if current is not None else 0
            based_on = found if expected_revision is None else expected_revision
            if found != based_on:
                raise stale_deployment(name, based_on, found)
            updated = validate_deployment(build(current))
            if updated.name != name:
                raise InvalidArgumentError(
                    f"a change of deployment {name!r} renamed it to {updated.name!r}",
                    field="name",
                )
            _check_versions(tx, updated)
            stored = tx.save_deployment(
                updated, expected_revision=based_on, now=context.clock(), actor=context.actor
            )
            context.audit(
                tx,
                action,
                stored.champion.model,
                version=stored.champion.version,
                target=_target(name),
                before=current.spec_dict() if current is not None else None,
                after=_audit_after(stored, reason, details),
            )
            event = tx.add_deployment_event(
                self._event(
                    name,
                    stored.revision,
                    action=action,
                    reason=reason,
                    spec=stored.spec_dict(),
                    details=details,
                )
            )
        context.emit(EVENT, _payload(event, deleted=False))
        return stored

    def _event(
        self,
        name: str,
        revision: int,
        *,
        action: str,
        reason: str | None,
        spec: Mapping[str, Any],
        details: Mapping[str, Any],
    ) -> NewDeploymentEvent:
        return NewDeploymentEvent(
            deployment=name,
            revision=revision,
            action=action,
            actor=self._context.actor,
            reason=reason,
            timestamp=self._context.clock(),
            spec=spec,
            details=details,
        )

    def _version(self, model: str, version: int) -> ModelVersion:
        with self._context.metadata.reader() as tx:
            return require_version(tx, model, version)


def _require(tx: MetadataSession, name: str) -> Deployment:
    deployment = tx.get_deployment(name)
    return deployment if deployment is not None else _missing(name)


def _missing(name: str) -> NoReturn:
    raise DeploymentNotFoundError(
        f"deployment {name!r} does not exist (create it with "
        f"`modelport deploy create {name} --version N`)",
        deployment=name,
    )


def _check_versions(tx: MetadataSession, deployment: Deployment) -> None:
    """Every arm's version exists and is not archived."""
    for arm in deployment.arms:
        version = require_version(tx, arm.model, arm.version)
        if version.status is VersionStatus.ARCHIVED:
            raise InvalidArgumentError(
                f"version {arm.version} of {arm.model!r} is archived; promote it to staging "
                f"or production to bring it back before deployment {deployment.name!r} "
                f"uses it (arm {arm.name!r})",
                model=arm.model,
                version=arm.version,
            )


def _target(name: str) -> str:
    return f"deployment:{name}"


def _audit_after(
    stored: Deployment | None, reason: str | None, details: Mapping[str, Any]
) -> dict[str, Any]:
    after: dict[str, Any] = {}
    if stored is not None:
        after = {**stored.spec_dict(), "revision": stored.revision}
    if reason is not None:
        after["reason"] = reason
    if details:
        after["details"] = dict(details)
    return after


def _payload(event: DeploymentEvent, *, deleted: bool) -> dict[str, Any]:
    """What listeners of ``deployment.changed`` get (JSON-ready)."""
    return {**event.to_dict(), "deleted": deleted}
