"""Search filters in SQL: a ``VersionFilter`` as SQLAlchemy conditions on version rows.

The conditions are meant for a query over ``VersionRow`` joined to its ``ModelRow``
(``SqlMetadataSession.search_versions``). They follow ``VersionFilter.matches``, the
reference semantics the contract tests hold every store to: aliases and stages are
membership tests (``archived``, a status, after ``Condition.effective``),
tags/metrics/params match only versions that have the key, and comparisons of a number
with text give the answers ``matches`` gives.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, exists, false, true

from modelport.domain.search import Condition, VersionFilter
from modelport.metadata.sql.tables import (
    AliasRow,
    ModelRow,
    VersionMetricRow,
    VersionParamRow,
    VersionRow,
    VersionTagRow,
)

# Keyed search fields and the table holding their values.
_KEYED_ROWS: dict[str, type[VersionTagRow | VersionMetricRow | VersionParamRow]] = {
    "tag": VersionTagRow,
    "metric": VersionMetricRow,
    "param": VersionParamRow,
}
_NUMERIC_KINDS = frozenset({"version", "metric"})
_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def version_conditions(query: VersionFilter, dialect: str) -> list[ColumnElement[bool]]:
    """One SQL condition per condition of ``query``, for the database ``dialect``
    (``postgresql`` or ``sqlite``); a query's ``where`` takes them all."""
    return [_condition(condition, dialect) for condition in query.conditions]


def _condition(condition: Condition, dialect: str) -> ColumnElement[bool]:
    condition = condition.effective()
    if condition.kind in ("alias", "stage"):
        has_alias = exists().where(
            AliasRow.model_id == VersionRow.model_id,
            AliasRow.version == VersionRow.version,
            AliasRow.alias == str(condition.value),
        )
        return has_alias if condition.op == "=" else ~has_alias
    row_class = _KEYED_ROWS.get(condition.kind)
    if row_class is not None:
        # A version without the key matches no condition on it, not even !=.
        return exists().where(
            row_class.version_id == VersionRow.id,
            row_class.key == (condition.key or ""),
            _compare(row_class.value, condition, dialect),
        )
    columns: dict[str, SQLColumnExpression[Any]] = {
        "name": ModelRow.name,
        "version": VersionRow.version,
        "status": VersionRow.status,
        "flavor": VersionRow.flavor,
        "created_by": VersionRow.created_by,
    }
    return _compare(columns[condition.kind], condition, dialect)


def _compare(
    column: SQLColumnExpression[Any], condition: Condition, dialect: str
) -> ColumnElement[bool]:
    op, value = condition.op, condition.value
    if op in ("LIKE", "ILIKE"):
        # PostgreSQL treats backslash as LIKE's escape character unless told not
        # to; the search syntax has no escape character (nor has SQLite's LIKE).
        escape = "" if dialect == "postgresql" else None
        match = column.like if op == "LIKE" else column.ilike
        return match(str(value), escape=escape)
    numeric_field = condition.kind in _NUMERIC_KINDS
    if numeric_field and not isinstance(value, float):
        # As in VersionFilter.matches: a number never equals text, so every
        # operator but = holds.
        return false() if op == "=" else true()
    if not numeric_field and isinstance(value, float):
        return false()
    return _COMPARISONS[op](column, value)
