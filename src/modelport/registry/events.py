"""The events the registry announces after a change has committed, and their payloads.

Names and payload fields follow MLflow 3's registry webhooks where they overlap
(``name``, ``version``, ``alias``, ``key``, ``value``, ``tags``, ``description``), with a
few of modelport's own fields added (``actor``, ``previous_version``, ``stage``). Versions
are numbers, as everywhere in modelport's JSON (MLflow sends them as strings). A stage
is an alias with rules, so moving a stage is ``model_version_alias.created`` with
``stage: true``; archiving a version deletes the aliases it had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelport.domain.entities import AliasMove, ModelVersion
from modelport.domain.names import is_archived_stage, is_stage
from modelport.registry.context import RegistryContext

REGISTERED_MODEL_CREATED = "registered_model.created"
MODEL_VERSION_CREATED = "model_version.created"
MODEL_VERSION_TAG_SET = "model_version_tag.set"
MODEL_VERSION_TAG_DELETED = "model_version_tag.deleted"
MODEL_VERSION_ALIAS_CREATED = "model_version_alias.created"
MODEL_VERSION_ALIAS_DELETED = "model_version_alias.deleted"

Event = tuple[str, dict[str, Any]]


def model_created(name: str, *, actor: str) -> Event:
    """A model got its first version."""
    return REGISTERED_MODEL_CREATED, {"name": name, "tags": {}, "description": "", "actor": actor}


def version_created(version: ModelVersion, *, actor: str) -> Event:
    """A version was registered."""
    return MODEL_VERSION_CREATED, {
        "name": version.name,
        "version": version.version,
        "source": version.ref,
        "flavor": version.flavor,
        "tags": dict(version.tags),
        "description": version.description,
        "manifest_digest": version.manifest_digest,
        "actor": actor,
    }


def tags_set(name: str, version: int, tags: Mapping[str, str], *, actor: str) -> list[Event]:
    """One event per tag set on a version."""
    return [
        (
            MODEL_VERSION_TAG_SET,
            {"name": name, "version": version, "key": key, "value": value, "actor": actor},
        )
        for key, value in tags.items()
    ]


def tags_deleted(name: str, version: int, keys: list[str], *, actor: str) -> list[Event]:
    """One event per tag removed from a version."""
    return [
        (MODEL_VERSION_TAG_DELETED, {"name": name, "version": version, "key": key, "actor": actor})
        for key in keys
    ]


def alias_deleted(name: str, alias: str, version: int, *, actor: str, reason: str) -> Event:
    """An alias or stage stopped pointing at ``version`` (deleted, or its version archived)."""
    return MODEL_VERSION_ALIAS_DELETED, {
        "name": name,
        "alias": alias,
        "version": version,
        "stage": is_stage(alias),
        "reason": reason,
        "actor": actor,
    }


def alias_moved(move: AliasMove, *, actor: str) -> list[Event]:
    """What an alias or stage move did: the alias now pointing at its version (unless it
    already did), and the aliases the versions it archived lost."""
    name = move.version.name
    events: list[Event] = []
    if not is_archived_stage(move.alias) and move.previous != move.version.version:
        payload = {
            "name": name,
            "alias": move.alias,
            "version": move.version.version,
            "previous_version": move.previous,
            "stage": is_stage(move.alias),
            "actor": actor,
        }
        events.append((MODEL_VERSION_ALIAS_CREATED, payload))
    for archived in move.archived:
        events.extend(
            alias_deleted(name, alias, archived.version, actor=actor, reason="archived")
            for alias in archived.removed_aliases
        )
    return events


def announce(context: RegistryContext, events: Iterable[Event]) -> None:
    """Hand each event to the context's listener (after the change committed)."""
    for event, payload in events:
        context.emit(event, payload)
