"""Where a version stands: aliases, stages (staging, production, archived), archiving.

Staging and production are aliases with rules: one version per stage. ``archived`` is a
status, not an alias: an archived version leaves every alias (the change says which),
and staging or production bring it back into use. Every move is one metadata
transaction with its audit entry.

A version without a signature (a model file registered without a sample) is refused in
production with ``MissingSignatureError`` unless ``force=True``, and the audit entry of a
forced promotion lists what was overridden (``"forced": ["signature"]``). Staging and
other aliases take such a version with a ``MissingSignatureWarning`` (``force`` silences
it). The warning is raised before anything is written, so ``-W error`` refuses cleanly.

Before a move to a stage or alias the promotion gates guard (``RegistryContext.gates``,
production by default), the gates run outside the transaction (they load models and
read data): a failed or undecided gate refuses the move with ``GateFailedError``. A
caller may skip them with a reason, which the audit entry records (``"skip_gates"``);
the entry of a gated move records each gate's outcome (``"gates"``).

Before the gates, a stage or alias listed in ``[signing] require_signed`` takes only a
version whose model signature verifies against the trusted keys
(``registry.signatures``); ``force`` and skipped gates do not waive that.
"""

from __future__ import annotations

import warnings
from typing import Any

from modelport.domain.entities import AliasMove, ArchivedVersion, ModelVersion, VersionStatus
from modelport.domain.gates import GateReport
from modelport.domain.names import Stage, is_archived_stage, is_stage, validate_alias
from modelport.errors import (
    AliasInUseError,
    AliasNotFoundError,
    InvalidArgumentError,
    MissingSignatureError,
    MissingSignatureWarning,
)
from modelport.metadata.store import MetadataSession
from modelport.registry import events
from modelport.registry.context import RegistryContext
from modelport.registry.lookups import require_model, require_version
from modelport.registry.signatures import check_policy

_LIVE_STAGES = (Stage.STAGING.value, Stage.PRODUCTION.value)


class Lifecycle:
    """Moves aliases and stages between versions, and archives versions."""

    def __init__(self, context: RegistryContext) -> None:
        self._context = context

    def move(
        self,
        name: str,
        alias: str | Stage,
        version: int,
        *,
        archive_previous: bool = False,
        force: bool = False,
        skip_gates: str | None = None,
    ) -> AliasMove:
        """Point an alias or stage at a version (``archived``: archive the version), in
        one transaction after the gates that guard it; what that did (see
        ``RegistryService.move``)."""
        alias = validate_alias(str(alias))
        if is_archived_stage(alias):
            move = self._archive(name, version)
        else:
            move = self._move_live(
                name,
                alias,
                version,
                archive_previous=archive_previous,
                force=force,
                skip_gates=skip_gates,
            )
        # After the transaction committed: the listener hears only what happened.
        events.announce(self._context, events.alias_moved(move, actor=self._context.actor))
        return move

    def _move_live(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        archive_previous: bool,
        force: bool,
        skip_gates: str | None,
    ) -> AliasMove:
        if archive_previous and not is_stage(alias):
            raise InvalidArgumentError(
                f"archive_previous applies to the stages staging and production, not to the "
                f"alias {alias!r}",
                model=name,
                field="archive_previous",
            )
        signed = self._check_signed(name, version, alias)
        gates = self._gate(name, version, alias, skip_gates=skip_gates, force=force)
        gates = {**signed, **gates}
        if is_stage(alias):
            return self._promote(
                name,
                version,
                Stage(alias),
                archive_previous=archive_previous,
                force=force,
                gates=gates,
            )
        return self._set_alias(name, alias, version, force=force, gates=gates)

    def _check_signed(self, name: str, version: int, alias: str) -> dict[str, Any]:
        """Verify the version's model signature when ``[signing]`` requires one for
        ``alias`` (neither ``force`` nor skipped gates waive it); what the audit entry
        records of it."""
        if self._context.signing is None:
            return {}
        with self._context.metadata.reader() as tx:
            candidate = require_version(tx, name, version)
        return check_policy(self._context, candidate, alias)

    def _gate(
        self, name: str, version: int, alias: str, *, skip_gates: str | None, force: bool
    ) -> dict[str, Any]:
        """Run the gates guarding ``alias`` for the version; what the audit entry records
        of them (nothing when none guard it)."""
        if skip_gates is not None and not skip_gates.strip():
            raise InvalidArgumentError(
                "skipping the gates needs a reason (it goes in the audit trail)",
                model=name,
                field="skip_gates",
            )
        if skip_gates is not None:
            return {"skip_gates": skip_gates}
        guard = self._context.gates
        if guard is None or not guard.guards(alias):
            return {}
        with self._context.metadata.reader() as tx:
            candidate = require_version(tx, name, version)
        if alias == Stage.PRODUCTION.value and candidate.signature is None and not force:
            return {}  # refused in the transaction, with the reason and the fix
        report = self._context.check_gates(candidate, alias)
        return {"gates": _outcomes(report)} if report is not None else {}

    def _set_alias(
        self, name: str, alias: str, version: int, *, force: bool, gates: dict[str, Any]
    ) -> AliasMove:
        context = self._context
        with context.metadata.transaction() as tx:
            target = require_version(tx, name, version)
            _refuse_archived(target, alias)
            check_signature(target, alias, force=force)
            before = tx.get_alias(name, alias)
            tx.set_alias(name, alias, version)
            context.audit(
                tx,
                "alias.set",
                name,
                version=version,
                target=alias,
                before={"version": before},
                after={"version": version, **gates},
            )
            return AliasMove(require_version(tx, name, version), alias, previous=before)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (or stage); ``AliasNotFoundError`` when it points nowhere."""
        validate_alias(alias)
        if is_archived_stage(alias):
            raise InvalidArgumentError(
                "'archived' is a status, not an alias: promote an archived version to staging "
                "or production to bring it back into use",
                model=name,
                field="alias",
            )
        context = self._context
        with context.metadata.transaction() as tx:
            require_model(tx, name)
            before = tx.get_alias(name, alias)
            if before is None:
                raise AliasNotFoundError(f"model {name!r} has no alias {alias!r}", model=name)
            tx.delete_alias(name, alias)
            context.audit(
                tx,
                "alias.delete",
                name,
                version=before,
                target=alias,
                before={"version": before},
            )
        deleted = events.alias_deleted(name, alias, before, actor=context.actor, reason="deleted")
        events.announce(context, [deleted])

    def _promote(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        archive_previous: bool,
        force: bool,
        gates: dict[str, Any],
    ) -> AliasMove:
        context = self._context
        with context.metadata.transaction() as tx:
            target = require_version(tx, name, version)
            forced = check_signature(target, stage.value, force=force)
            previous = tx.get_alias(name, stage.value)
            restored = target.status is VersionStatus.ARCHIVED
            if restored:
                tx.set_version_status(name, version, VersionStatus.ACTIVE)
            tx.set_alias(name, stage.value, version)
            archived: tuple[ArchivedVersion, ...] = ()
            if archive_previous and previous is not None and previous != version:
                archived = (self._archive_in(tx, name, previous, reason=f"replaced in {stage}"),)
            after: dict[str, object] = {
                "version": version,
                "status": VersionStatus.ACTIVE.value,
                **gates,
            }
            if forced:
                after["forced"] = forced
            context.audit(
                tx,
                "stage.promote",
                name,
                version=version,
                target=stage.value,
                before={"version": previous, "status": target.status.value},
                after=after,
            )
            return AliasMove(
                version=require_version(tx, name, version),
                alias=stage.value,
                previous=previous,
                restored=restored,
                archived=archived,
                forced=tuple(forced),
            )

    def _archive(self, name: str, version: int) -> AliasMove:
        """Archive a version; refused while ``staging`` or ``production`` points at it."""
        with self._context.metadata.transaction() as tx:
            archived = self._archive_in(tx, name, version, reason="archived")
            found = require_version(tx, name, version)
            return AliasMove(found, Stage.ARCHIVED.value, archived=(archived,))

    def _archive_in(
        self, tx: MetadataSession, name: str, version: int, *, reason: str
    ) -> ArchivedVersion:
        target = require_version(tx, name, version)
        live = [a for a in target.aliases if a in _LIVE_STAGES]
        if live and reason == "archived":
            raise AliasInUseError(
                f"version {version} of {name!r} is in {', '.join(live)}; promote another version "
                "there (or delete the stage) before archiving it",
                model=name,
                version=version,
                aliases=tuple(live),
            )
        # Archived is a status: the version leaves every alias, and nothing points at it.
        removed = tuple(target.aliases)
        for alias in removed:
            tx.delete_alias(name, alias)
        tx.set_version_status(name, version, VersionStatus.ARCHIVED)
        self._context.audit(
            tx,
            "version.archive",
            name,
            version=version,
            before={"status": target.status.value, "aliases": list(removed)},
            after={"status": VersionStatus.ARCHIVED.value, "reason": reason},
        )
        return ArchivedVersion(version, removed)


def _outcomes(report: GateReport) -> dict[str, str]:
    """Each gate's outcome, for the audit entry."""
    return {result.gate: result.outcome.value for result in report.results}


def parse_stage(stage: str | Stage) -> Stage:
    """``stage`` as a ``Stage``; ``InvalidArgumentError`` listing the stages otherwise."""
    try:
        return Stage(stage)
    except ValueError:
        stages = ", ".join(s.value for s in Stage)
        raise InvalidArgumentError(
            f"unknown stage {stage!r}; stages: {stages}", field="stage"
        ) from None


def check_signature(version: ModelVersion, alias: str, *, force: bool) -> list[str]:
    """Refuse (production) or warn about (any other alias or stage) a version without a
    signature; return the checks ``force`` overrode, for the audit trail."""
    if version.signature is not None or alias == Stage.ARCHIVED.value:
        return []
    where = f"version {version.version} of {version.name!r}"
    if alias == Stage.PRODUCTION.value:
        if force:
            return ["signature"]
        raise MissingSignatureError(
            f"{where} has no signature, so nothing would check its inputs in production; "
            "register it again with a sample input (modelport model register ... --sample "
            "FILE, or sample_input=...) to record one, or pass --force (force=True) to "
            "promote it anyway",
            model=version.name,
            version=version.version,
        )
    if not force:
        warnings.warn(
            MissingSignatureWarning(
                f"{where} has no signature: nothing checks the inputs of {alias!r}, and the "
                "version would be refused in production unless forced; register it with a "
                "sample input to record one",
                model=version.name,
                version=version.version,
            ),
            stacklevel=2,
        )
    return []


def _refuse_archived(version: ModelVersion, alias: str) -> None:
    if version.status is VersionStatus.ARCHIVED:
        raise InvalidArgumentError(
            f"version {version.version} of {version.name!r} is archived; promote it to staging or "
            f"production to bring it back before pointing {alias!r} at it",
            model=version.name,
            version=version.version,
        )
