"""Aggregates of the prediction log computed inside DuckDB: no logged row leaves it.

Volume, errors and latency per bucket, and each feature's current counts over the
reference histogram's bins or categories. Queries read only the columns they need.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from fsspec.implementations.local import LocalFileSystem

from modelport.monitoring.drift.reference import OTHER, ColumnReference
from modelport.monitoring.drift_window import log_column
from modelport.monitoring.prediction_log.segments import prediction_files
from modelport.monitoring.report.model import Bucket, Histogram, Serving, Window
from modelport.package.stats import value_key

# Labels live beside versions as <model>/_labels/<day>/...: never prediction rows.
_RESERVED_PREFIX = "_"
# An error is a request answered 5xx, as the alert rules' error rate counts them; a
# 4xx is the client's mistake. Rows of requests answered 4xx or 5xx carry no prediction.
ERROR_STATUS = 500
FAILED_STATUS = 400

# Rows of the window that carry data: failed requests log no inputs (as drift reads it).
_ANSWERED = (
    "time >= $since::TIMESTAMPTZ AND time < $until::TIMESTAMPTZ "
    "AND (status IS NULL OR status < 400)"
)

_REQUESTS = """
WITH requests AS (
  SELECT request_id, min(time) AS time, count(*) AS rows,
         max(latency_s) AS latency_s, max(status) AS status
  FROM read_parquet($files, union_by_name = true)
  WHERE time >= $since::TIMESTAMPTZ AND time < $until::TIMESTAMPTZ
  GROUP BY request_id
)
SELECT {key} AS bucket,
       coalesce(sum(rows) FILTER (WHERE status IS NULL OR status < {failed}), 0)::BIGINT,
       count(*)::BIGINT,
       count(*) FILTER (WHERE status >= {error})::BIGINT,
       quantile_cont(latency_s, 0.5), quantile_cont(latency_s, 0.99)
FROM requests GROUP BY bucket ORDER BY bucket
"""


@dataclass(frozen=True)
class LogScan:
    """The prediction segments of one model (one version or all) and how to read them."""

    files: tuple[str, ...]
    remote: Any  # the fsspec file system to register with DuckDB, None when local

    @classmethod
    def of(cls, uri: str, model: str, version: str | None, window: Window) -> LogScan:
        """The segments whose day directory overlaps ``window`` (a writer puts each row
        in the directory of its UTC day), ``_labels`` and other ``_`` directories left
        out: they are not versions."""
        fs, files = prediction_files(uri, model, version, window.since, window.until)
        if isinstance(fs, LocalFileSystem):
            return cls(tuple(files), None)
        return cls(tuple(fs.unstrip_protocol(f) for f in files), fs)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = duckdb.connect()
        try:
            if self.remote is not None:
                connection.register_filesystem(self.remote)
            yield connection
        finally:
            connection.close()


def serving_summary(scan: LogScan, window: Window) -> Serving:
    """Volume, errors and latency percentiles over the whole window."""
    rows = _requests(scan, window, "0")
    if not rows:
        return Serving(0, 0, 0, None, None)
    _, count, requests, errors, p50, p99 = rows[0]
    return Serving(int(count), int(requests), int(errors), p50, p99)


def timeline(scan: LogScan, window: Window) -> list[Bucket]:
    """One bucket per hour or day of the window, empty ones included."""
    size = int(window.bucket_size.total_seconds())
    key = f"(floor(epoch(time) / {size}) * {size})::BIGINT"
    found = {int(r[0]): r for r in _requests(scan, window, key)}
    buckets = []
    for start in bucket_starts(window):
        row = found.get(int(start.timestamp()))
        if row is None:
            buckets.append(Bucket(start, 0, 0, 0, None, None))
        else:
            buckets.append(Bucket(start, int(row[1]), int(row[2]), int(row[3]), row[4], row[5]))
    return buckets


def bucket_starts(window: Window) -> list[datetime]:
    """The starts of the buckets covering the window, aligned on UTC hours or days."""
    size = window.bucket_size.total_seconds()
    first = math.floor(window.since.timestamp() / size) * size
    starts = []
    moment = datetime.fromtimestamp(first, UTC)
    while moment < window.until:
        starts.append(moment)
        moment += timedelta(seconds=size)
    return starts


def _requests(scan: LogScan, window: Window, key: str) -> list[tuple[Any, ...]]:
    if not scan.files:
        return []
    sql = _REQUESTS.format(key=key, error=ERROR_STATUS, failed=FAILED_STATUS)
    params = {"files": list(scan.files), "since": window.since, "until": window.until}
    with scan.connect() as connection:
        return connection.execute(sql, params).fetchall()


def histograms(
    scan: LogScan,
    window: Window,
    references: Sequence[ColumnReference],
    probabilities: Sequence[str] = (),
) -> list[Histogram]:
    """Current counts of each logged column over its reference's bins or categories.

    ``probabilities`` are the reference's class names in the order of the logged
    probability lists. Columns the log does not have are left out (the log may keep a
    column subset).
    """
    if not scan.files:
        return []
    with scan.connect() as connection:
        types = _column_types(connection, scan)
        result = []
        for ref in references:
            column, index = log_column(ref.name, list(probabilities))
            if column not in types or (index is None and types[column].endswith("]")):
                continue
            value = _quote(column) if index is None else f"{_quote(column)}[{index + 1}]"
            sql_type = types[column].removesuffix("[]") if index is not None else types[column]
            histogram = _histogram(_Reader(connection, scan, window), ref, value, sql_type)
            if histogram is not None:
                result.append(histogram)
        return result


def _column_types(connection: duckdb.DuckDBPyConnection, scan: LogScan) -> dict[str, str]:
    relation = connection.execute(
        "DESCRIBE SELECT * FROM read_parquet($files, union_by_name = true)",
        {"files": list(scan.files)},
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in relation}


@dataclass(frozen=True)
class _Reader:
    """One open connection over a scan's files, for queries bounded by the window."""

    connection: duckdb.DuckDBPyConnection
    scan: LogScan
    window: Window

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        params = {
            "files": list(self.scan.files),
            "since": self.window.since,
            "until": self.window.until,
        }
        return self.connection.execute(sql, params).fetchall()


def _histogram(
    reader: _Reader,
    ref: ColumnReference,
    value: str,
    sql_type: str,
) -> Histogram | None:
    summary = ref.summary
    if ref.is_numeric and "value_counts" in summary:
        return _by_value(reader, ref, value, numeric=True)
    if ref.is_numeric and "histogram" in summary:
        return _by_bin(reader, ref, value, sql_type)
    if not ref.is_numeric and "top" in summary:
        return _by_value(reader, ref, value, numeric=False)
    return None  # a column with no values in the reference has nothing to draw


def _by_bin(
    reader: _Reader,
    ref: ColumnReference,
    value: str,
    sql_type: str,
) -> Histogram:
    """Bin index as the drift tests compute it: ``searchsorted(edges, x, 'right') - 1``
    clipped to the bins, so values beyond the reference range land in the outer bins."""
    edges = [float(e) for e in ref.summary["histogram"]["edges"]]
    reference = tuple(float(c) for c in ref.summary["histogram"]["counts"])
    timestamp = "TIMESTAMP" in sql_type.upper()
    value = f"epoch({value})" if timestamp else f"TRY_CAST({value} AS DOUBLE)"
    cases = " ".join(f"WHEN x < {edge!r} THEN {i}" for i, edge in enumerate(edges[1:-1]))
    index = f"CASE {cases} ELSE {len(reference) - 1} END" if cases else "0"
    sql = f"""
    SELECT {index} AS bin, count(*)::BIGINT FROM (
      SELECT {value} AS x FROM read_parquet($files, union_by_name = true)
      WHERE {_ANSWERED}
    ) WHERE x IS NOT NULL AND isfinite(x) GROUP BY bin
    """  # noqa: S608 (edges are floats, the column name is quoted)
    counts = [0] * len(reference)
    for position, count in reader.fetch(sql):
        counts[int(position)] = int(count)
    labels = tuple(_range_label(lo, hi) for lo, hi in itertools.pairwise(edges))
    labels = labels or (number(edges[0]),)
    return Histogram(ref.name, "bins", labels, reference, tuple(counts), tuple(edges))


def _by_value(
    reader: _Reader,
    ref: ColumnReference,
    value: str,
    *,
    numeric: bool,
) -> Histogram:
    """Current counts per reference category (``value_key`` of numbers, ``str`` of
    others, as the reference keys them), the rest in ``<other>``."""
    expected = ref.categories()
    sql = f"""
    SELECT {value} AS v, count(*)::BIGINT FROM read_parquet($files, union_by_name = true)
    WHERE {_ANSWERED} AND {value} IS NOT NULL
    GROUP BY v
    """  # noqa: S608 (the column name is quoted)
    observed = dict.fromkeys(expected, 0)
    for found, count in reader.fetch(sql):
        key = _numeric_key(found) if numeric else str(found)
        bucket = key if key in expected else OTHER
        observed[bucket] = observed.get(bucket, 0) + int(count)
    if observed.get(OTHER) == 0 and expected.get(OTHER, 0.0) == 0.0:
        observed.pop(OTHER)  # no "<other>" on either side: do not draw an empty bar
    keys = list(observed)
    labels = tuple(number(float(k)) if numeric and k != OTHER else k for k in keys)
    reference = tuple(expected.get(k, 0.0) for k in keys)
    return Histogram(ref.name, "categories", labels, reference, tuple(observed[k] for k in keys))


def _numeric_key(value: Any) -> str:
    try:
        return value_key(float(value))
    except (TypeError, ValueError):
        return OTHER


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def number(value: float) -> str:
    """A short label for a number: 3 significant digits, thousands as k and M."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _range_label(low: float, high: float) -> str:
    return f"{number(low)}\u2013{number(high)}"  # an en dash
