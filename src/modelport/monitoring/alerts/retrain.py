"""The retraining trigger's export: the alert window's logged rows as one Parquet file.

The file holds what a retraining job needs from the window: each answered row's
prediction id, time and version, its inputs (``in_*``, and ``id_*`` id columns), the
model's outputs (``out_*``) and its latest label (``label`` as text, ``label_value`` as
a number when it is one; null where no label arrived yet), joined in DuckDB by
prediction id or by an id column, as live performance joins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from modelport.monitoring.feedback.logdb import columns_of, log_database, quoted
from modelport.monitoring.feedback.store import PREDICTION_ID, check_key_kind
from modelport.monitoring.prediction_log.records import ID_PREFIX

_KEPT = ("prediction_id", "time", "version")
_PREFIXES = ("in_", "id_", "out_")
_ANSWERED = "status < 400"  # failed requests have no outputs to learn from


@dataclass(frozen=True)
class RetrainExport:
    """The exported file and what it holds."""

    path: str
    rows: int
    labeled: int
    columns: list[str]
    since: datetime
    until: datetime

    def to_dict(self) -> dict[str, Any]:
        """The ``retrain`` object of the notice."""
        return {
            "path": self.path,
            "rows": self.rows,
            "labeled": self.labeled,
            "columns": self.columns,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
        }


def export_window(
    log_uri: str,
    model: str,
    *,
    version: str | None,
    since: datetime,
    until: datetime,
    directory: str,
    name: str,
) -> RetrainExport:
    """Write the window's answered rows of ``model``, with labels, to ``directory/name.parquet``."""
    with log_database(log_uri, model, version=version, since=since, until=until) as db:
        table = _labeled_window(db, since, until)
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"{name}.parquet"
    temporary = path.with_name(path.name + ".tmp")
    pq.write_table(table, temporary)
    temporary.replace(path)  # a job handed the path never sees half a file
    labeled = table.num_rows - table["label"].null_count
    return RetrainExport(str(path), table.num_rows, labeled, table.column_names, since, until)


def _labeled_window(db: duckdb.DuckDBPyConnection, since: datetime, until: datetime) -> pa.Table:
    logged = columns_of(db, "predictions")
    keep = ", ".join(f"w.{quoted(c)}" for c in logged if c in _KEPT or c.startswith(_PREFIXES))
    db.execute(
        "CREATE TEMP TABLE window_rows AS SELECT * FROM predictions "  # noqa: S608 - constants
        f"WHERE {_ANSWERED} AND time >= ? AND time < ?",
        [since, until],
    )
    joined = _labels_by_prediction(db, logged)
    sql = (
        f"SELECT {keep}, j.label, j.label_value FROM window_rows w "  # noqa: S608 - quoted names
        f"LEFT JOIN ({joined}) j ON j.prediction_id = w.prediction_id "
        "ORDER BY w.time, w.prediction_id"
    )
    return db.sql(sql).to_arrow_table()


def _labels_by_prediction(db: duckdb.DuckDBPyConnection, logged: dict[str, str]) -> str:
    """SQL of (prediction_id, label, label_value): each window row's latest label, by
    prediction id or by any id column the labels use (the latest of them wins)."""
    kinds = [str(row[0]) for row in db.execute("SELECT DISTINCT key_kind FROM labels").fetchall()]
    joins = []
    for kind in sorted(kinds):
        check_key_kind(kind)  # spliced into SQL: an identifier
        column = PREDICTION_ID if kind == PREDICTION_ID else ID_PREFIX + kind
        if column in logged:
            joins.append(
                "SELECT w.prediction_id, l.label, l.label_value, l.time FROM window_rows w "  # noqa: S608
                f"JOIN latest_labels l ON l.key_kind = '{kind}' "
                f"AND l.key = CAST(w.{quoted(column)} AS VARCHAR)"
            )
    if not joins:
        return (
            "SELECT NULL::VARCHAR AS prediction_id, NULL::VARCHAR AS label, "
            "NULL::DOUBLE AS label_value"
        )
    return (
        "SELECT prediction_id, arg_max(label, time) AS label, "  # noqa: S608 - built above
        f"arg_max(label_value, time) AS label_value FROM ({' UNION ALL '.join(joins)}) "
        "GROUP BY prediction_id"
    )
