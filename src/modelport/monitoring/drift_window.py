"""Drift over a window of the prediction log, against a package's reference statistics.

Only the columns the tests need are read, and DuckDB does the counting where it can,
so a window costs one pass over its Parquet columns per kind of test:

* bin counts over the reference histogram's edges (PSI, Jensen-Shannon and
  chi-squared of numeric columns): one ``count_if(x >= edge)`` per inner edge, all
  columns in one aggregate query; a bin's count is the difference of two of them;
* category counts (chi-squared, Z-test, Jensen-Shannon of categories, numeric
  columns with few values): one ``GROUPING SETS`` query, one set per column;
* raw values (Kolmogorov-Smirnov, Wasserstein): a reservoir sample of at most
  ``sample_rows`` rows of the window. A window no larger than that is read whole,
  so the tests equal scipy's on it; a larger one is approximated as documented in
  docs/monitoring.md.

Log columns: a feature ``f`` is ``in_f``; the reference's ``prediction`` is
``out_predictions`` (``prediction.NAME``: ``out_NAME``) and ``probability.CLASS`` is
that class's element of the ``out_probabilities`` list. Reference columns the log
does not hold are listed as ``untested``. Directories whose name starts with ``_``
(``<model>/_labels/``: the ground truth) are not predictions and are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from modelport.errors import InvalidArgumentError, MissingStatisticsError
from modelport.monitoring.drift.reference import (
    BinCounts,
    CategoryCounts,
    ColumnReference,
    Current,
    check_version,
)
from modelport.monitoring.drift.report import (
    DRIFT_SHARE,
    ColumnDrift,
    DriftReport,
    column_drift,
    reference_columns,
)
from modelport.monitoring.drift.selection import ColumnOptions, check_options, choose
from modelport.monitoring.prediction_log.records import INPUT_PREFIX, OUTPUT_PREFIX
from modelport.monitoring.prediction_log.segments import prediction_files
from modelport.package.stats import value_key

SAMPLE_ROWS = 20_000  # raw values kept for KS and Wasserstein (a window this size is exact)
_SAMPLE_SEED = 0
PREDICTIONS = "predictions"  # the served model's outputs (serving.interface)
PROBABILITIES = "probabilities"

_RAW, _BINS, _CATEGORIES = "raw", "bins", "categories"


@dataclass(frozen=True)
class WindowDrift:
    """A drift report over one window of the log, and what it covered."""

    model: str
    version: str | None
    since: datetime | None
    until: datetime | None
    rows: int
    report: DriftReport
    untested: tuple[str, ...] = ()
    sampled_rows: int = 0  # rows the raw-value tests read (0: none needed)
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the window, the dataset verdict and one entry per tested column."""
        report = self.report
        return {
            "model": self.model,
            "version": self.version,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "rows": self.rows,
            "sampled_rows": self.sampled_rows,
            "dataset_drift": report.dataset_drift,
            "share_drifted": report.share_drifted,
            "drift_share": report.drift_share,
            "drifted_columns": report.drifted_columns,
            "columns": [
                {
                    "column": c.column,
                    "method": c.method,
                    "score": c.score,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in report.columns
            ],
            "untested": list(self.untested),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Plan:
    """One reference column: where it is in the log and what the test needs of it."""

    ref: ColumnReference
    expression: str  # SQL over the window giving the column's values
    need: str  # _RAW, _BINS or _CATEGORIES


def log_column(name: str, stats_probabilities: list[str]) -> tuple[str, int | None]:
    """The log column of a reference column, and the list index for a class probability."""
    if name == "prediction":
        return OUTPUT_PREFIX + PREDICTIONS, None
    if name.startswith("prediction."):
        return OUTPUT_PREFIX + name.removeprefix("prediction."), None
    if name.startswith("probability."):
        label = name.removeprefix("probability.")
        index = stats_probabilities.index(label) if label in stats_probabilities else None
        return OUTPUT_PREFIX + PROBABILITIES, index
    return INPUT_PREFIX + name, None


def drift_over_log(
    log_uri: str,
    model: str,
    stats: Mapping[str, Any] | None,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    options: Mapping[str, ColumnOptions] | None = None,
    drift_share: float = DRIFT_SHARE,
    sample_rows: int = SAMPLE_ROWS,
) -> WindowDrift:
    """Drift of ``model`` (one version, or all) over the logged rows with
    ``since <= time < until`` (timezone-aware; None: unbounded)."""
    stats = check_version(stats)
    references = reference_columns(stats)
    options = dict(options or {})
    check_options(options, references)
    fs, files = prediction_files(log_uri, model, version, since, until)
    empty = WindowDrift(model, version, since, until, rows=0, report=DriftReport((), drift_share))
    if not files:
        return empty
    connection = duckdb.connect()
    try:
        if not isinstance(fs, LocalFileSystem):
            connection.register_filesystem(fs)
            files = [fs.unstrip_protocol(path) for path in files]
        plans, untested = _plan(
            connection, files, stats, references, options, since=since, until=until
        )
        rows, current, sampled = _read(connection, plans, sample_rows)
    finally:
        connection.close()
    reference_rows = int(stats.get("rows", 0))
    results: list[ColumnDrift] = []
    for plan in plans:
        name = plan.ref.name
        if _empty(current[name]):
            untested.append(name)
            continue
        results.append(column_drift(plan.ref, current[name], reference_rows, options.get(name)))
    notes: tuple[str, ...] = ()
    if sampled < rows and any(p.need == _RAW for p in plans):
        notes = (
            f"raw-value tests (ks, wasserstein) read a random sample of {sampled} of the "
            f"{rows} rows",
        )
    return replace(
        empty,
        rows=rows,
        report=DriftReport(tuple(results), drift_share),
        untested=tuple(untested),
        sampled_rows=sampled,
        notes=notes,
    )


# SQL text below is built from the log's own column names (quoted with _ident), file
# paths (quoted with _sql_list), numbers and timestamps this module formats: no caller
# text reaches it unquoted, hence the S608 exemptions.


def _plan(
    connection: duckdb.DuckDBPyConnection,
    files: list[str],
    stats: Mapping[str, Any],
    references: Mapping[str, ColumnReference],
    options: Mapping[str, ColumnOptions],
    *,
    since: datetime | None,
    until: datetime | None,
) -> tuple[list[_Plan], list[str]]:
    """Define the window as the view ``w``, and say how each reference column is read."""
    source = f"read_parquet({_sql_list(files)}, union_by_name = true)"
    relation = connection.sql(f"SELECT * FROM {source} LIMIT 0")  # noqa: S608
    types = {name: str(kind) for name, kind in zip(relation.columns, relation.dtypes, strict=True)}
    probabilities = list((stats.get("predictions") or {}).get("probabilities") or {})
    reference_rows = int(stats.get("rows", 0))
    plans: list[_Plan] = []
    untested: list[str] = []
    for name, ref in references.items():
        column, index = log_column(name, probabilities)
        if column not in types or (column.endswith(PROBABILITIES) and index is None):
            untested.append(name)
            continue
        method, _ = choose(ref, reference_rows or ref.rows, options.get(name))
        expression = _expression(column, types[column], index, ref)
        plans.append(_Plan(ref, expression, _need(method, ref)))
    where = _where(since, until, "status" in types)
    connection.sql(f"CREATE TEMP VIEW w AS SELECT * FROM {source} {where}")  # noqa: S608
    return plans, untested


def _read(
    connection: duckdb.DuckDBPyConnection, plans: list[_Plan], sample_rows: int
) -> tuple[int, dict[str, Current], int]:
    """The window's rows, each column's current side, and the rows sampled."""
    bins, rows = _bin_counts(connection, [p for p in plans if p.need == _BINS])
    categories = _category_counts(connection, [p for p in plans if p.need == _CATEGORIES])
    raw, sampled = _sample(connection, [p for p in plans if p.need == _RAW], sample_rows, rows)
    return rows, {**bins, **categories, **raw}, sampled


def _need(method: str, ref: ColumnReference) -> str:
    """What the method reads: raw values, bin counts or category counts."""
    if method in ("ks", "wasserstein"):
        return _RAW
    if method == "z" or ref.has_value_counts():  # as drift.methods reads them
        return _CATEGORIES
    return _BINS


def _expression(column: str, kind: str, index: int | None, ref: ColumnReference) -> str:
    sql = _ident(column)
    if index is not None:
        sql = f"{sql}[{index + 1}]"  # DuckDB lists count from 1
    if ref.is_numeric and kind.upper().startswith("TIMESTAMP"):
        return f"epoch({sql})"
    if ref.is_numeric:
        return f"TRY_CAST({sql} AS DOUBLE)"
    return sql


def _bin_counts(
    connection: duckdb.DuckDBPyConnection, plans: list[_Plan]
) -> tuple[dict[str, Current], int]:
    """Every binned column's counts (and the window's rows) in one aggregate query."""
    selects = ["count(*)"]
    for plan in plans:
        x = plan.expression
        selects.append(f"count_if(isfinite({x}))")
        edges = plan.ref.summary["histogram"]["edges"]
        # searchsorted(edges, x, "right") - 1, clipped: the bin of x is the number of
        # inner edges <= x (values beyond the range count in the outer bins, as
        # drift.reference.binned does).
        selects += [f"count_if(isfinite({x}) AND {x} >= {_float(e)})" for e in edges[1:-1]]
    row = connection.sql(f"SELECT {', '.join(selects)} FROM w").fetchall()[0]  # noqa: S608
    rows, position = int(row[0] or 0), 1
    result: dict[str, Current] = {}
    for plan in plans:
        inner = len(plan.ref.summary["histogram"]["edges"]) - 2
        at_least = [int(v or 0) for v in row[position : position + 1 + max(inner, 0)]]
        position += 1 + max(inner, 0)
        bins = len(plan.ref.summary["histogram"]["counts"])
        at_least = [*(at_least + [0] * bins)[:bins], 0]
        result[plan.ref.name] = BinCounts([at_least[j] - at_least[j + 1] for j in range(bins)])
    return result, rows


def _category_counts(
    connection: duckdb.DuckDBPyConnection, plans: list[_Plan]
) -> dict[str, Current]:
    """Counts per value of every categorical column, one grouping set per column."""
    if not plans:
        return {}
    names = [f"c{i}" for i in range(len(plans))]
    projections = ", ".join(f"{p.expression} AS {n}" for p, n in zip(plans, names, strict=True))
    groupings = ", ".join(f"grouping({n})" for n in names)
    sets = ", ".join(f"({n})" for n in names)
    sql = (
        f"SELECT {', '.join(names)}, {groupings}, count(*) "  # noqa: S608
        f"FROM (SELECT {projections} FROM w) GROUP BY GROUPING SETS ({sets})"
    )
    counts: list[dict[str, int]] = [{} for _ in plans]
    width = len(plans)
    for row in connection.sql(sql).fetchall():
        slot = next(i for i in range(width) if row[width + i] == 0)
        value, n = row[slot], int(row[-1])
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            continue  # missing values are not tested, as drift.reference does
        key = value_key(value) if plans[slot].ref.is_numeric else str(value)
        counts[slot][key] = counts[slot].get(key, 0) + n
    return {p.ref.name: CategoryCounts(c) for p, c in zip(plans, counts, strict=True)}


def _sample(
    connection: duckdb.DuckDBPyConnection, plans: list[_Plan], size: int, rows: int
) -> tuple[dict[str, Current], int]:
    """Raw values of the columns that need them: the whole window when it has at most
    ``size`` rows, else a reservoir sample of ``size`` rows."""
    if not plans:
        return {}, 0
    projections = ", ".join(f"{p.expression} AS c{i}" for i, p in enumerate(plans))
    sql = f"SELECT {projections} FROM w"  # noqa: S608
    if rows > size:
        sample = f"USING SAMPLE reservoir({int(size)} ROWS) REPEATABLE ({_SAMPLE_SEED})"
        sql = f"SELECT * FROM ({sql}) {sample}"  # noqa: S608
    table = connection.sql(sql).to_arrow_table()
    result: dict[str, Current] = {}
    for i, plan in enumerate(plans):
        # Nulls (a column some segments lack, failed rows) read as NaN and are dropped.
        column = table.column(i).cast("float64").to_numpy(zero_copy_only=False)
        values = np.asarray(column, dtype="float64")
        result[plan.ref.name] = values[np.isfinite(values)]
    return result, table.num_rows


def _empty(values: Current) -> bool:
    if isinstance(values, BinCounts):
        return sum(values.counts) == 0
    if isinstance(values, CategoryCounts):
        return sum(values.counts.values()) == 0
    return len(values) == 0


def _where(since: datetime | None, until: datetime | None, has_status: bool) -> str:
    clauses = []
    if since is not None:
        clauses.append(f"time >= {_timestamp(since)}")
    if until is not None:
        clauses.append(f"time < {_timestamp(until)}")
    if has_status:
        clauses.append("(status IS NULL OR status < 400)")  # failed requests carry no data
    return ("WHERE " + " AND ".join(clauses)) if clauses else ""


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidArgumentError(
            f"drift window bound {moment} is naive: give a timezone-aware datetime"
        )
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _float(value: float) -> str:
    return repr(float(value)) + "::DOUBLE"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def missing_statistics(
    model: str, version: int | str | None, detail: str
) -> MissingStatisticsError:
    """The error for a version whose statistics the drift tests cannot use, naming the
    command that computes them."""
    number = int(version) if version not in (None, "") else None
    ref = f"{model}/{version}" if number is not None else model
    # The library's generic advice ("compute version-2 statistics ...") made concrete:
    detail = detail.partition("; compute version-")[0]
    return MissingStatisticsError(
        f"{model} version {version if number is not None else '(unversioned)'}: {detail}; "
        f"compute them from the training data with: modelport version stats {ref} "
        "--sample FILE",
        model=model,
        version=number,
    )
