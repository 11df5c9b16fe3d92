"""Lists of models and versions read with plain SELECTs, not ORM objects.

Listing every model, or the versions a search matches, builds thousands of rows with
their tags, metrics, params and aliases. Mapping each one to an ORM instance and then to
the domain object cost ~0.3 ms per model (most of the dashboard's and ``model list``'s
time on a registry of 1,000 models); here each child table is read once, for all the
parents at once, and the domain objects are built straight from the rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from modelport.domain.entities import ModelVersion, RegisteredModel, VersionStatus
from modelport.metadata.sql.statements import sortable
from modelport.metadata.sql.tables import (
    AliasRow,
    ModelRow,
    ModelTagRow,
    VersionMetricRow,
    VersionParamRow,
    VersionRow,
    VersionTagRow,
)

# Ids per IN list: far below SQLite's and PostgreSQL's limits on bound parameters.
_CHUNK = 5000


def list_models(orm: Session, dialect: str, name: str | None = None) -> list[RegisteredModel]:
    """Every model (or the one called ``name``) with its tags, aliases and newest
    version number, by name."""
    statement = select(
        ModelRow.id, ModelRow.name, ModelRow.description, ModelRow.created_at, ModelRow.updated_at
    ).order_by(sortable(ModelRow.name, dialect))
    newest_query = select(VersionRow.model_id, func.max(VersionRow.version))
    tags_query = select(ModelTagRow.model_id, ModelTagRow.key, ModelTagRow.value)
    aliases_query = select(AliasRow.model_id, AliasRow.alias, AliasRow.version)
    if name is not None:
        statement = statement.where(ModelRow.name == name)
        one = select(ModelRow.id).where(ModelRow.name == name).scalar_subquery()
        newest_query = newest_query.where(VersionRow.model_id == one)
        tags_query = tags_query.where(ModelTagRow.model_id == one)
        aliases_query = aliases_query.where(AliasRow.model_id == one)
    models = orm.execute(statement).all()
    newest: dict[int, int] = {
        model_id: version
        for model_id, version in orm.execute(newest_query.group_by(VersionRow.model_id))
    }
    tags = _pairs(orm.execute(tags_query))
    aliases = _pairs(orm.execute(aliases_query))
    return [
        RegisteredModel(
            name=name,
            description=description,
            created_at=created_at,
            updated_at=updated_at,
            tags=tags.get(model_id, {}),
            aliases=aliases.get(model_id, {}),
            latest_version=newest.get(model_id),
        )
        for model_id, name, description, created_at, updated_at in models
    ]


def list_versions(
    orm: Session,
    conditions: Sequence[ColumnElement[bool]],
    order: Sequence[Any],
    limit: int | None = None,
) -> list[ModelVersion]:
    """The versions meeting ``conditions`` (over ``VersionRow`` joined with its
    ``ModelRow``), in ``order``, at most ``limit``, each with its tags, metrics, params
    and (sorted) aliases."""
    statement = (
        select(
            VersionRow.id,
            VersionRow.model_id,
            ModelRow.name,
            VersionRow.version,
            VersionRow.flavor,
            VersionRow.status,
            VersionRow.artifact_key,
            VersionRow.manifest_digest,
            VersionRow.created_by,
            VersionRow.created_at,
            VersionRow.description,
            VersionRow.signature,
        )
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(*conditions)
        .order_by(*order)
    )
    if limit is not None:
        statement = statement.limit(limit)
    rows = orm.execute(statement).all()
    ids = [row.id for row in rows]
    tags = _children(orm, VersionTagRow, ids)
    metrics = _children(orm, VersionMetricRow, ids)
    params = _children(orm, VersionParamRow, ids)
    aliases = _aliases(orm, {row.model_id for row in rows})
    return [
        ModelVersion(
            name=row.name,
            version=row.version,
            flavor=row.flavor,
            status=VersionStatus(row.status),
            artifact_key=row.artifact_key,
            manifest_digest=row.manifest_digest,
            created_by=row.created_by,
            created_at=row.created_at,
            description=row.description,
            tags=tags.get(row.id, {}),
            metrics=metrics.get(row.id, {}),
            params=params.get(row.id, {}),
            aliases=tuple(sorted(aliases.get((row.model_id, row.version), ()))),
            signature=row.signature,
        )
        for row in rows
    ]


def _pairs(rows: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """``(parent, key, value)`` rows as ``{parent: {key: value}}``."""
    grouped: dict[int, dict[str, Any]] = defaultdict(dict)
    for parent, key, value in rows:
        grouped[parent][key] = value
    return grouped


def _children(
    orm: Session,
    table: type[VersionTagRow] | type[VersionMetricRow] | type[VersionParamRow],
    ids: Sequence[int],
) -> dict[int, dict[str, Any]]:
    """The key/value rows of ``table`` for the versions ``ids``."""
    grouped: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(table.version_id, table.key, table.value).where(table.version_id.in_(chunk))
        grouped.update(_pairs(orm.execute(query)))
    return grouped


def _aliases(orm: Session, model_ids: set[int]) -> dict[tuple[int, int], list[str]]:
    """The aliases of the models ``model_ids``, by (model, version)."""
    found: dict[tuple[int, int], list[str]] = defaultdict(list)
    ordered = sorted(model_ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        query = select(AliasRow.model_id, AliasRow.version, AliasRow.alias).where(
            AliasRow.model_id.in_(chunk)
        )
        for model_id, version, alias in orm.execute(query):
            found[(model_id, version)].append(alias)
    return found
