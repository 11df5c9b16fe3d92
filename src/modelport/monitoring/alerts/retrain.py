"""The retraining trigger's export: the alert window's logged rows as one Parquet file.

The file holds what a retraining job needs from the window: each row's prediction id,
time and version, its inputs (``in_*``, and ``id_*`` id columns) and the model's
outputs (``out_*``); when the labels library (``monitoring.performance``) is present,
each row's label joined by prediction id (``label``, null where none arrived yet).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from modelport.monitoring.prediction_log.reader import query

_KEPT = ("prediction_id", "time", "version")
_PREFIXES = ("in_", "id_", "out_")


@dataclass(frozen=True)
class RetrainExport:
    """The exported file and what it holds."""

    path: str
    rows: int
    labeled: int | None
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
    """Write the window's rows of ``model`` to ``directory/name.parquet``."""
    table = query(log_uri, model, version, since, until)
    keep = [c for c in table.column_names if c in _KEPT or c.startswith(_PREFIXES)]
    table = table.select(keep)
    table, labeled = _with_labels(table, log_uri, model)
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = posixpath.join(directory, f"{name}.parquet")
    temporary = path + ".tmp"
    pq.write_table(table, temporary)
    Path(temporary).replace(path)  # a job handed the path never sees half a file
    return RetrainExport(path, table.num_rows, labeled, table.column_names, since, until)


def _with_labels(table: pa.Table, log_uri: str, model: str) -> tuple[pa.Table, int | None]:
    """``table`` with a ``label`` column when labels can be read; else as it is and None."""
    try:
        from modelport.monitoring.performance import read_labels  # type: ignore[attr-defined,import-not-found,unused-ignore]
    except ImportError:
        return table, None
    labels: pa.Table = read_labels(log_uri, model)
    if labels.num_rows == 0 or table.num_rows == 0:
        column = pa.nulls(table.num_rows)
        return table.append_column("label", column), 0
    joined = table.join(labels.select(["prediction_id", "label"]), "prediction_id")
    joined = joined.sort_by([("time", "ascending"), ("prediction_id", "ascending")])
    return joined, joined.num_rows - joined["label"].null_count
