"""Receiving labels: store them, and say how many were unknown or corrected.

Every well-formed label is stored, even when its key is not (yet) in the prediction
log: the log is flushed up to a second late and labels may be sent before it is, so an
unknown key is counted and reported, never refused. A key that already had a label
gets a new row (the latest counts): it is counted as a correction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from modelport.monitoring.feedback.logdb import columns_of, log_database, quoted
from modelport.monitoring.feedback.store import (
    PREDICTION_ID,
    SCHEMA,
    Label,
    check_key_kind,
    write_labels,
)
from modelport.monitoring.prediction_log.records import ID_PREFIX

LABEL_COLUMNS = ("key_kind", "key", "label", "label_value", "label_type")
_SAMPLE = 20  # unknown keys listed in a result: enough to spot a wrong id column


@dataclass
class IntakeResult:
    """What happened to one batch of labels for one model."""

    model: str
    accepted: int = 0
    unknown: int = 0
    corrected: int = 0
    unknown_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the HTTP answer's and ``--json``'s)."""
        return {
            "model": self.model,
            "accepted": self.accepted,
            "unknown": self.unknown,
            "corrected": self.corrected,
            "unknown_keys": self.unknown_keys,
        }


def labels_table(labels: list[Label]) -> pa.Table:
    """The label columns of ``labels``, in order."""
    return pa.table(
        {name: [getattr(label, name) for label in labels] for name in LABEL_COLUMNS},
        schema=pa.schema([SCHEMA.field(name) for name in LABEL_COLUMNS]),
    )


def receive(
    uri: str,
    model: str,
    labels: pa.Table,
    *,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> IntakeResult:
    """Count unknown keys and corrections of ``labels`` (LABEL_COLUMNS), then store them."""
    result = IntakeResult(model, accepted=labels.num_rows)
    if labels.num_rows == 0:
        return result
    with log_database(uri, model) as db:
        db.register("incoming", labels)
        result.unknown, result.unknown_keys = _unknown(db)
        result.corrected = _corrected(db)
    write_labels(uri, model, labels, actor=actor, source=source, now=now)
    return result


def _unknown(db: duckdb.DuckDBPyConnection) -> tuple[int, list[str]]:
    """How many incoming labels match no logged prediction, and a few of their keys."""
    logged = columns_of(db, "predictions")
    kinds = [str(row[0]) for row in db.execute("SELECT DISTINCT key_kind FROM incoming").fetchall()]
    matches = []
    for kind in kinds:
        check_key_kind(kind)  # it is spliced into SQL below: an identifier or nothing
        column = PREDICTION_ID if kind == PREDICTION_ID else ID_PREFIX + kind
        if column not in logged:
            continue  # never logged: every label of this kind is unknown
        key = f"CAST({quoted(column)} AS VARCHAR)"
        matches.append(  # kind: checked identifier; column: quoted
            f"SELECT DISTINCT '{kind}' AS key_kind, {key} AS key FROM predictions "  # noqa: S608
            f"WHERE {key} IN (SELECT key FROM incoming WHERE key_kind = '{kind}')"
        )
    known = " UNION ALL ".join(matches) or "SELECT NULL::VARCHAR AS key_kind, NULL::VARCHAR AS key"
    rows = db.execute(
        f"""
        WITH known AS ({known})
        SELECT key FROM incoming i
        WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.key_kind = i.key_kind AND k.key = i.key)
        """  # noqa: S608 (known: built above from checked names)
    ).fetchall()
    return len(rows), [str(row[0]) for row in rows[:_SAMPLE]]


def _corrected(db: duckdb.DuckDBPyConnection) -> int:
    """Incoming labels whose key had a label already (stored, or earlier in the batch)."""
    row = db.execute(
        """
        WITH numbered AS (
            SELECT key_kind, key,
                   row_number() OVER (PARTITION BY key_kind, key) AS nth
            FROM incoming
        ),
        stored AS (
            SELECT DISTINCT l.key_kind, l.key FROM labels l
            SEMI JOIN incoming i ON l.key_kind = i.key_kind AND l.key = i.key
        )
        SELECT count(*) FROM numbered n
        WHERE n.nth > 1
           OR EXISTS (SELECT 1 FROM stored s WHERE s.key_kind = n.key_kind AND s.key = n.key)
        """
    ).fetchone()
    return int(row[0]) if row else 0


def receive_labels(
    uri: str,
    labels: dict[str, list[Label]],
    *,
    actor: str,
    source: str,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Store labels of several models (``items.parse_feedback``'s output); the totals,
    the result per model and the per-item ``errors`` passed in, as one JSON answer."""
    results = [
        receive(uri, model, labels_table(items), actor=actor, source=source)
        for model, items in labels.items()
    ]
    return {
        "accepted": sum(r.accepted for r in results),
        "unknown": sum(r.unknown for r in results),
        "corrected": sum(r.corrected for r in results),
        "rejected": len(errors or []),
        "models": [r.to_dict() for r in results],
        "errors": errors or [],
    }
