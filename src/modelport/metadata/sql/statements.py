"""The SQL statements the metadata session builds on: dialect-aware inserts and upserts,
and the values of a new version row (models and versions are read in ``listings``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import SQLColumnExpression
from sqlalchemy.dialects import postgresql, sqlite

from modelport.domain.entities import NewVersion, VersionStatus
from modelport.errors import InvalidArgumentError, ModelNotFoundError


def sortable(column: SQLColumnExpression[str], dialect: str) -> SQLColumnExpression[str]:
    """``column`` sorted by code point, as Python sorts, whatever the database's collation."""
    return column.collate("C") if dialect == "postgresql" else column


def insert_row(row_class: type[Any], values: Mapping[str, Any], dialect: str) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses available."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(row_class).values(dict(values))


def upsert_row(
    row_class: type[Any],
    values: Mapping[str, Any],
    dialect: str,
    *,
    key: tuple[str, ...],
    replace: tuple[str, ...],
) -> Any:
    """Insert ``values``, or update the ``replace`` columns of the row with the same ``key``."""
    statement = insert_row(row_class, values, dialect)
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in replace},
    )


def version_values(model_id: int, version: int, new: NewVersion) -> dict[str, Any]:
    """The columns of a new version row."""
    return {
        "model_id": model_id,
        "version": version,
        "flavor": new.flavor,
        "status": VersionStatus.ACTIVE.value,
        "artifact_key": new.artifact_key,
        "manifest_digest": new.manifest_digest,
        "created_by": new.created_by,
        "created_at": new.created_at,
        "description": new.description,
        "signature": dict(new.signature) if new.signature is not None else None,
    }


def stored_metrics(new: NewVersion) -> dict[str, float]:
    """The metrics as floats; NaN is refused, as SQLite would store it as NULL."""
    metrics = {key: float(value) for key, value in new.metrics.items()}
    for key, value in metrics.items():
        if math.isnan(value):
            raise InvalidArgumentError(
                f"metric {key!r} of model {new.name!r} is NaN; metrics must be numbers",
                model=new.name,
                field=f"metrics.{key}",
            )
    return metrics


def model_not_found(name: str) -> ModelNotFoundError:
    """The error for a model that does not exist."""
    return ModelNotFoundError(f"model {name!r} does not exist", model=name)
