"""DuckDB over one model's prediction segments and label segments, as two views.

``predictions`` holds the model's logged rows (one version or all; only the day
directories a time window can touch are read), ``labels`` every label row received and
``latest_labels`` the label that counts for each key (the latest). Columns missing from
a segment read as NULL (``union_by_name``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb
from fsspec.implementations.local import LocalFileSystem

from modelport.monitoring.feedback.store import SCHEMA, label_files
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import (
    prediction_files,
)

# The latest label per key: arg_max over (time, seq) keeps one row per key without a
# sort of every label.
_LATEST = """
CREATE VIEW latest_labels AS
SELECT key_kind, key,
       arg_max(label, (time, seq)) AS label,
       arg_max(label_value, (time, seq)) AS label_value,
       max(time) AS time
FROM labels GROUP BY key_kind, key
"""


@contextmanager
def log_database(
    uri: str,
    model: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    every_prediction: bool = False,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the views ``predictions``, ``labels`` and ``latest_labels``
    (and ``every_prediction``, every version and day, when asked for).

    ``predictions`` is not filtered by time here (callers filter on ``time``); only
    day directories outside ``[since, until]`` are left out. ``threads`` caps DuckDB's
    threads (default: one per core).
    """
    fs, predictions = prediction_files(uri, model, version, since, until)
    _, labels = label_files(uri, model)
    everything = prediction_files(uri, model)[1] if every_prediction else []
    connection = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        if not isinstance(fs, LocalFileSystem):
            connection.register_filesystem(fs)
            predictions = [fs.unstrip_protocol(path) for path in predictions]
            labels = [fs.unstrip_protocol(path) for path in labels]
            everything = [fs.unstrip_protocol(path) for path in everything]
        _view(connection, "predictions", predictions, BASE_SCHEMA.names, BASE_SCHEMA.types)
        _view(connection, "labels", labels, SCHEMA.names, SCHEMA.types)
        if every_prediction:
            columns, types = BASE_SCHEMA.names, BASE_SCHEMA.types
            _view(connection, "every_prediction", everything, columns, types)
        connection.execute(_LATEST)
        yield connection
    finally:
        connection.close()


def _view(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    files: list[str],
    columns: list[str],
    types: list[object],
) -> None:
    if files:
        listed = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
        connection.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)"  # noqa: S608 (paths quoted; views take no parameters)
        )
        return
    # No segment yet: an empty view with the fixed columns, so queries still bind.
    typed = ", ".join(f"NULL::{_duck_type(t)} AS {c}" for c, t in zip(columns, types, strict=True))
    connection.execute(f"CREATE VIEW {name} AS SELECT {typed} WHERE false")


def _duck_type(arrow_type: object) -> str:
    text = str(arrow_type)
    if text.startswith("timestamp"):
        return "TIMESTAMPTZ"
    return {"string": "VARCHAR", "double": "DOUBLE", "int64": "BIGINT", "int32": "INTEGER"}[text]


def quoted(name: str) -> str:
    """``name`` as a DuckDB identifier (column names come from models and signatures)."""
    return '"' + name.replace('"', '""') + '"'


def columns_of(connection: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    """The columns of a view and their DuckDB types."""
    rows = connection.execute(f"DESCRIBE {view}").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}
