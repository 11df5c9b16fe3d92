"""Live performance: a model's logged predictions joined with the labels sent for them.

Each logged row of the window (successful requests only: status below 400) takes the
latest label of its prediction id or of one of its id columns (``id_<name>``; a label
for ``customer_id=c1`` applies to every prediction logged for that customer); when
several apply, the latest wins. The joined rows are scored by ``monitoring.scores``,
whose values equal scikit-learn's.

The prediction is the ``out_predictions`` column (or the only ``out_`` column besides
``out_probabilities``); probabilities are the ``out_probabilities`` list column, one
probability per class in sorted class order (the order the served flavors give).

Labels compare with predictions as text when the model predicts strings, else as
numbers (a label that is not a number then cannot be scored and is left out).
The task is classification when probabilities were logged or predictions are strings,
booleans or integers, or floats that are all whole numbers as the labels are;
regression otherwise. ``task=`` overrides the guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from modelport.errors import InvalidArgumentError
from modelport.monitoring import scores
from modelport.monitoring.feedback.logdb import columns_of, log_database, quoted
from modelport.monitoring.feedback.store import PREDICTION_ID, check_key_kind
from modelport.monitoring.prediction_log.records import ID_PREFIX, OUTPUT_PREFIX

Task = Literal["classification", "regression"]
PREDICTIONS = OUTPUT_PREFIX + "predictions"
PROBABILITIES = OUTPUT_PREFIX + "probabilities"
_TEXT_TYPES = ("VARCHAR", "BOOLEAN")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT")  # fmt: skip


@dataclass
class PerformanceReport:
    """How right a model's logged predictions were, as far as labels say."""

    model: str
    version: str | None
    since: datetime | None
    until: datetime | None
    task: Task | None
    predictions: int = 0
    labeled: int = 0
    coverage: float = 0.0
    unmatched_labels: int = 0  # keys labeled in the window that no logged row has
    metrics: dict[str, float] = field(default_factory=dict)
    positive_class: Any = None
    probability_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (HTTP answer, ``--json``)."""
        return {
            "model": self.model,
            "version": self.version,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "task": self.task,
            "predictions": self.predictions,
            "labeled": self.labeled,
            "coverage": self.coverage,
            "unmatched_labels": self.unmatched_labels,
            "metrics": self.metrics,
            "positive_class": self.positive_class,
            "probability_rows": self.probability_rows,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def live_performance(
    log_uri: str,
    model: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    task: Task | None = None,
    threads: int | None = None,
) -> PerformanceReport:
    """Metrics of ``model``'s predictions logged in ``[since, until)`` (one version or all)
    against their latest labels. ``since``/``until`` must be timezone-aware; ``threads``
    caps DuckDB's threads (default: one per core)."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidArgumentError(f"{name}={moment} is naive: give a timezone-aware time")
    if task not in (None, "classification", "regression"):
        raise InvalidArgumentError(f"task {task!r}: use classification or regression")
    report = PerformanceReport(model, version, since, until, task)
    with log_database(
        log_uri,
        model,
        version=version,
        since=since,
        until=until,
        every_prediction=True,
        threads=threads,
    ) as db:
        _window_view(db, since, until)
        report.predictions = _scalar(db, "SELECT count(*) FROM window_rows")
        report.unmatched_labels = _unmatched(db, since, until)
        logged = columns_of(db, "predictions")
        prediction = prediction_column(logged)
        if prediction is None or report.predictions == 0:
            return report
        joined, numeric = labelled_rows(db, logged, prediction)
    report.labeled = joined.num_rows
    report.coverage = report.labeled / report.predictions
    if report.labeled:
        _score(report, joined, numeric, logged[prediction])
    return report


def _window_view(
    db: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime | None
) -> None:
    conditions = ["status < 400"]
    if since is not None:
        conditions.append(f"time >= '{since.isoformat()}'::TIMESTAMPTZ")
    if until is not None:
        conditions.append(f"time < '{until.isoformat()}'::TIMESTAMPTZ")
    where = " AND ".join(conditions)  # times from datetime.isoformat; views take no parameters
    db.execute(f"CREATE VIEW window_rows AS SELECT * FROM predictions WHERE {where}")  # noqa: S608


def _scalar(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def prediction_column(logged: dict[str, str]) -> str | None:
    """The logged column holding the prediction (None when the log has no output)."""
    if PREDICTIONS in logged:
        return PREDICTIONS
    outputs = [c for c in logged if c.startswith(OUTPUT_PREFIX) and c != PROBABILITIES]
    if len(outputs) == 1:
        return outputs[0]
    if outputs:
        raise InvalidArgumentError(
            f"the log has several outputs ({', '.join(outputs)}) and no {PREDICTIONS}: "
            "live performance needs to know which one is the prediction"
        )
    return None


def _key_kinds(db: duckdb.DuckDBPyConnection, logged: dict[str, str]) -> list[tuple[str, str]]:
    """(key kind, logged column) of every kind of label that can match a logged row."""
    kinds = [str(row[0]) for row in db.execute("SELECT DISTINCT key_kind FROM labels").fetchall()]
    found = []
    for kind in sorted(kinds):
        check_key_kind(kind)  # spliced into SQL: an identifier or nothing
        column = PREDICTION_ID if kind == PREDICTION_ID else ID_PREFIX + kind
        if column in logged:
            found.append((kind, column))
    return found


def labelled_rows(
    db: duckdb.DuckDBPyConnection, logged: dict[str, str], prediction: str
) -> tuple[pa.Table, bool]:
    """The labeled rows of the view ``window_rows``: pred, label (text or number), proba;
    and whether they are numbers."""
    if logged[prediction].endswith("]"):
        raise InvalidArgumentError(
            f"{prediction} holds lists ({logged[prediction]}): live performance scores one "
            "prediction per row"
        )
    numeric = logged[prediction] not in ("VARCHAR",)
    proba = quoted(PROBABILITIES) if PROBABILITIES in logged else "NULL::DOUBLE[]"
    pred = f"CAST({quoted(prediction)} AS DOUBLE)" if numeric else quoted(prediction)
    label = "label_value" if numeric else "label"
    kinds = _key_kinds(db, logged)
    if not kinds:
        return pa.table({"pred": [], "label": [], "proba": []}), numeric
    # Spliced: quoted column names and kinds checked as identifiers (check_key_kind).
    select = f"SELECT p.prediction_id, {pred} AS pred, {proba} AS proba, l.{label} AS label"
    joins = [
        f"{select}, l.time FROM window_rows p JOIN latest_labels l "
        f"ON l.key_kind = '{kind}' AND l.key = CAST(p.{quoted(column)} AS VARCHAR)"
        for kind, column in kinds
    ]
    if len(joins) == 1:
        sql = joins[0]
    else:  # several kinds may label one row: the latest label wins
        sql = (
            "SELECT prediction_id, any_value(pred) AS pred, any_value(proba) AS proba, "  # noqa: S608
            f"arg_max(label, time) AS label FROM ({' UNION ALL '.join(joins)}) "
            "GROUP BY prediction_id"
        )
    where = "label IS NOT NULL AND pred IS NOT NULL"
    table = db.sql(f"SELECT pred, label, proba FROM ({sql}) WHERE {where}").to_arrow_table()  # noqa: S608
    return table, numeric


def _unmatched(
    db: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime | None
) -> int:
    """Keys labeled in the window that match no logged row of the model (any version, any
    day). Raw label rows, not the latest per key: which label counts does not matter here,
    and one grouping of every label is the costliest step of the whole report."""
    logged = columns_of(db, "every_prediction")
    kinds = _key_kinds(db, logged)
    conditions = ["true"]
    if since is not None:
        conditions.append(f"time >= '{since.isoformat()}'::TIMESTAMPTZ")
    if until is not None:
        conditions.append(f"time < '{until.isoformat()}'::TIMESTAMPTZ")
    received = " AND ".join(conditions)
    # One anti-join per kind of key that the log has a column for; labels of any other
    # kind cannot match at all.
    parts = [
        f"SELECT key_kind, key FROM (SELECT key_kind, key FROM labels WHERE key_kind = '{kind}' "  # noqa: S608
        f"AND {received}) l ANTI JOIN every_prediction p "
        f"ON l.key = CAST(p.{quoted(column)} AS VARCHAR)"
        for kind, column in kinds
    ]
    listed = ", ".join(f"'{kind}'" for kind, _ in kinds) or "NULL"
    parts.append(
        f"SELECT key_kind, key FROM labels WHERE key_kind NOT IN ({listed}) AND {received}"  # noqa: S608
    )
    union = " UNION ALL ".join(parts)
    return _scalar(db, f"SELECT count(*) FROM (SELECT DISTINCT key_kind, key FROM ({union}))")  # noqa: S608


def _score(report: PerformanceReport, joined: pa.Table, numeric: bool, pred_type: str) -> None:
    if numeric:
        y_pred = joined.column("pred").to_numpy()
        y_true = joined.column("label").to_numpy()
    else:
        y_pred = np.asarray(joined.column("pred").to_pylist(), dtype=object)
        y_true = np.asarray(joined.column("label").to_pylist(), dtype=object)
    proba_rows = joined.column("proba").combine_chunks()
    has_proba = proba_rows.null_count < len(proba_rows)
    task = report.task or guess_task(numeric, pred_type, has_proba, y_true, y_pred)
    report.task = task
    if task == "regression":
        if not numeric:
            raise InvalidArgumentError(
                "regression needs numeric predictions; this model logs text predictions"
            )
        report.metrics = scores.regression(y_true.astype(np.float64), y_pred.astype(np.float64))
        return
    report.metrics = scores.classification(y_true, y_pred)
    classes = scores.classes_of(y_true, y_pred)
    if len(classes) <= 2:
        report.positive_class = _plain(scores.positive_class(classes))
    if has_proba:
        _add_probabilistic(report, y_true, classes, proba_rows)


def guess_task(
    numeric: bool, pred_type: str, has_proba: bool, y_true: np.ndarray, y_pred: np.ndarray
) -> Task:
    """Classification or regression, from the prediction's type and values (module doc)."""
    if has_proba or not numeric or pred_type in _TEXT_TYPES or pred_type in _INTEGER_TYPES:
        return "classification"
    whole = np.all(np.mod(y_pred, 1) == 0) and np.all(np.mod(y_true, 1) == 0)
    return "classification" if whole else "regression"


def _add_probabilistic(
    report: PerformanceReport, y_true: np.ndarray, classes: np.ndarray, proba_rows: pa.Array
) -> None:
    """ROC AUC and log loss over the labeled rows that logged probabilities."""
    present = np.asarray(proba_rows.is_valid())
    rows = proba_rows.filter(pa.array(present))
    lengths = np.asarray(rows.value_lengths())
    if len(rows) == 0 or not np.all(lengths == lengths[0]):
        return
    width = int(lengths[0])
    matrix = np.asarray(rows.flatten(), dtype=np.float64).reshape(len(rows), width)
    model_classes = _model_classes(classes, width)
    if model_classes is None:
        return
    report.probability_rows = len(rows)
    report.metrics.update(scores.probabilistic(y_true[present], matrix, model_classes))


def _model_classes(observed: np.ndarray, width: int) -> np.ndarray | None:
    """The classes of the probability columns: the observed ones when there are as many,
    else 0..width-1 when the observed classes are whole numbers among them."""
    if len(observed) == width:
        return observed
    if observed.dtype != object and np.all(np.isin(observed, np.arange(width))):
        return np.arange(width, dtype=np.float64)
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
