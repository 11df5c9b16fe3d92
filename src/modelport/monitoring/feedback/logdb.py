"""DuckDB over one model's prediction segments and label segments, as two views.

``predictions`` holds the model's logged rows (one version or all; only the day
directories a time window can touch are read), ``labels`` every label row received and
``latest_labels`` the label that counts for each key (the latest). Columns missing from
a segment read as NULL (``union_by_name``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import duckdb
import fsspec
from fsspec.implementations.local import LocalFileSystem

from modelport.monitoring.feedback.store import SCHEMA, label_files
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import (
    SUFFIX,
    check_part,
    is_prediction_segment,
    list_segments,
    open_root,
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


def prediction_files(
    uri: str,
    model: str,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The prediction segments of ``model`` whose day can hold rows in the window."""
    fs, root = open_root(uri)
    check_part("model", model)
    if version is not None:
        check_part("version", version)
    pattern = posixpath.join(root, model, version or "*", "*", "*" + SUFFIX)
    first = since.date() if since is not None else None
    last = until.date() if until is not None else None
    files = []
    for path in list_segments(fs, pattern):
        if not is_prediction_segment(path):
            continue
        day = _day_of(path)
        if day is not None and (
            (first is not None and day < first) or (last is not None and day > last)
        ):
            continue  # whole days outside the window: not even opened
        files.append(path)
    return fs, files


def _day_of(path: str) -> date | None:
    try:
        return date.fromisoformat(posixpath.basename(posixpath.dirname(path)))
    except ValueError:
        return None


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
