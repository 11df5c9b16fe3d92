"""Queries over every segment of every worker, with DuckDB."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import prediction_files

_SQL = """
SELECT * FROM read_parquet(?, union_by_name = true)
WHERE (?::TIMESTAMPTZ IS NULL OR time >= ?::TIMESTAMPTZ)
  AND (?::TIMESTAMPTZ IS NULL OR time < ?::TIMESTAMPTZ)
ORDER BY time, prediction_id
"""
# The newest ``last`` rows, put back in time order.
_LAST_SQL = """
SELECT * FROM (
  SELECT * FROM read_parquet(?, union_by_name = true)
  WHERE (?::TIMESTAMPTZ IS NULL OR time >= ?::TIMESTAMPTZ)
    AND (?::TIMESTAMPTZ IS NULL OR time < ?::TIMESTAMPTZ)
  ORDER BY time DESC, prediction_id DESC
  LIMIT ?
)
ORDER BY time, prediction_id
"""


def query(
    uri: str,
    model: str,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    last: int | None = None,
) -> pa.Table:
    """Logged rows of ``model`` (one version or all) with ``since <= time < until``.

    Rows are ordered by time. Columns are the union of the segments' columns; a
    feature missing from a segment reads as NULL. ``since`` and ``until`` must be
    timezone-aware. ``last`` keeps only the newest rows (still oldest first).
    """
    fs, files = prediction_files(uri, model, version, since, until)
    if not files:
        return BASE_SCHEMA.empty_table()
    connection = duckdb.connect()
    try:
        if not isinstance(fs, LocalFileSystem):
            connection.register_filesystem(fs)
            files = [fs.unstrip_protocol(path) for path in files]
        bounds = [since, since, until, until]
        if last is None:
            return connection.sql(_SQL, params=[files, *bounds]).to_arrow_table()
        return connection.sql(_LAST_SQL, params=[files, *bounds, last]).to_arrow_table()
    finally:
        connection.close()
