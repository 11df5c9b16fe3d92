"""The registry's objects as the REST API sends them, and back.

``to_dict`` (on each entity) is what ``--json`` prints and the REST API answers; the
functions here rebuild the same frozen objects from it, so that the HTTP client returns
what ``RegistryService`` returns. One field stays behind: a version's ``artifact_key``
(where the store keeps its files) is the server's business, so a version read over
HTTP has an empty one; its files come through the registry's download routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelport.domain.deployments import Deployment, DeploymentEvent
from modelport.domain.entities import (
    AliasMove,
    ArchivedVersion,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)
from modelport.domain.keys import ApiKey


def model_from_wire(data: Mapping[str, Any]) -> RegisteredModel:
    """A ``RegisteredModel`` from its ``to_dict()``."""
    return RegisteredModel(
        name=data["name"],
        description=data["description"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        tags=dict(data.get("tags") or {}),
        aliases={alias: int(number) for alias, number in (data.get("aliases") or {}).items()},
        latest_version=data.get("latest_version"),
    )


def version_from_wire(data: Mapping[str, Any]) -> ModelVersion:
    """A ``ModelVersion`` from its ``to_dict()`` (without its ``artifact_key``)."""
    signature = data.get("signature")
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        flavor=data["flavor"],
        status=VersionStatus(data["status"]),
        artifact_key="",
        manifest_digest=data["manifest_digest"],
        created_by=data["created_by"],
        created_at=datetime.fromisoformat(data["created_at"]),
        description=data.get("description", ""),
        tags=dict(data.get("tags") or {}),
        metrics={key: float(value) for key, value in (data.get("metrics") or {}).items()},
        params=dict(data.get("params") or {}),
        aliases=tuple(data.get("aliases") or ()),
        signature=dict(signature) if signature is not None else None,
    )


def move_from_wire(data: Mapping[str, Any]) -> AliasMove:
    """An ``AliasMove`` from its ``to_dict()``."""
    return AliasMove(
        version=version_from_wire(data["version"]),
        alias=data["alias"],
        previous=data.get("previous"),
        restored=bool(data.get("restored")),
        archived=tuple(
            ArchivedVersion(int(item["version"]), tuple(item.get("removed_aliases") or ()))
            for item in data.get("archived") or ()
        ),
        forced=tuple(data.get("forced") or ()),
    )


def audit_from_wire(data: Mapping[str, Any]) -> AuditEntry:
    """An ``AuditEntry`` from its ``to_dict()``."""
    return AuditEntry(
        id=int(data["id"]),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        actor=data["actor"],
        action=data["action"],
        model=data["model"],
        version=data.get("version"),
        target=data.get("target"),
        before=data.get("before"),
        after=data.get("after"),
    )


def deployment_from_wire(data: Mapping[str, Any]) -> Deployment:
    """A ``Deployment`` from its ``to_dict()``."""
    return Deployment.from_spec(
        data["name"],
        data,
        revision=int(data["revision"]),
        created_at=_moment(data.get("created_at")),
        updated_at=_moment(data.get("updated_at")),
        updated_by=data.get("updated_by"),
    )


def event_from_wire(data: Mapping[str, Any]) -> DeploymentEvent:
    """A ``DeploymentEvent`` from its ``to_dict()``."""
    return DeploymentEvent(
        id=int(data["id"]),
        deployment=data["deployment"],
        revision=int(data["revision"]),
        action=data["action"],
        actor=data["actor"],
        reason=data.get("reason"),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        spec=dict(data.get("spec") or {}),
        details=dict(data.get("details") or {}),
    )


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def key_from_wire(data: Mapping[str, Any]) -> ApiKey:
    """An ``ApiKey`` from its ``to_dict()`` (which never carries its hash: empty here)."""
    return ApiKey(
        key_id=data["key_id"],
        name=data["name"],
        scopes=tuple(data.get("scopes") or ()),
        secret_hash="",
        created_at=datetime.fromisoformat(data["created_at"]),
        created_by=data["created_by"],
        expires_at=_moment(data.get("expires_at")),
        revoked_at=_moment(data.get("revoked_at")),
        revoked_by=data.get("revoked_by"),
        rate_limit=data.get("rate_limit"),
        daily_quota=data.get("daily_quota"),
    )
