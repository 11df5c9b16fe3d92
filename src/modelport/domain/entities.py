"""What the registry stores: registered models, their versions, and the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelport.domain.refs import SCHEME


class VersionStatus(StrEnum):
    """Whether a version is in use or has been archived."""

    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class RegisteredModel:
    """A named model with its versions' aliases and the newest version number."""

    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tags": dict(self.tags),
            "aliases": dict(sorted(self.aliases.items())),
            "latest_version": self.latest_version,
        }


@dataclass(frozen=True)
class NewVersion:
    """Everything needed to create a version; the store assigns the number."""

    name: str
    flavor: str
    artifact_key: str
    manifest_digest: str
    created_by: str
    created_at: datetime
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    signature: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    flavor: str
    status: VersionStatus
    artifact_key: str
    manifest_digest: str
    created_by: str
    created_at: datetime
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    signature: Mapping[str, Any] | None = None

    @property
    def ref(self) -> str:
        """The canonical reference, e.g. ``models:/churn/3``."""
        return f"{SCHEME}{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "flavor": self.flavor,
            "status": self.status.value,
            "aliases": list(self.aliases),
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "tags": dict(self.tags),
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "manifest_digest": self.manifest_digest,
            "signature": dict(self.signature) if self.signature is not None else None,
        }


@dataclass(frozen=True)
class ArchivedVersion:
    """A version a stage change archived, and the aliases it took off that version."""

    version: int
    removed_aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"version": self.version, "removed_aliases": list(self.removed_aliases)}


@dataclass(frozen=True)
class AliasMove:
    """Everything pointing an alias or stage at a version did, for the CLI to say it.

    ``alias`` is the alias or stage moved (``archived`` when the version was archived:
    a status, which no alias points at); ``version`` the version as it is now;
    ``previous`` the version the alias or stage pointed at before (``None`` if none
    did, and for ``archived``); ``restored`` that the version was archived and is
    active again; ``archived`` the versions archived (the version itself for
    ``archived``, the previous holder with ``archive_previous``) and the aliases each
    lost; ``forced`` the checks ``force`` overrode.
    """

    version: ModelVersion
    alias: str
    previous: int | None = None
    restored: bool = False
    archived: tuple[ArchivedVersion, ...] = ()
    forced: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output."""
        return {
            "alias": self.alias,
            "version": self.version.to_dict(),
            "previous": self.previous,
            "restored": self.restored,
            "archived": [archived.to_dict() for archived in self.archived],
            "forced": list(self.forced),
        }


@dataclass(frozen=True)
class NewAuditEntry:
    """A change to record: who did what to which model, with the state before and after."""

    actor: str
    action: str
    model: str
    timestamp: datetime
    version: int | None = None
    target: str | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditEntry(NewAuditEntry):
    """A recorded change, numbered in the order it was made."""

    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "model": self.model,
            "version": self.version,
            "target": self.target,
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
        }
