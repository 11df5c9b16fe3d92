"""What each arm of a deployment did, from the prediction log (DuckDB) and the labels.

An arm's rows are the logged rows under its ``<model>/<version>/`` directories whose
``deployment`` column names the deployment. A shadow arm's rows are those logged with
its arm name; a live arm's are the deployment's rows that no shadow logged (so a
canary keeps its rows once promoted to champion: the version, not the arm's name,
says who answered). Segments written before the log had ``deployment`` and ``arm``
columns read them as NULL: their rows belong to no deployment.

Requests and latencies count requests (a request with many rows is one request);
accuracy counts the labelled rows (labels joined as ``monitoring.performance`` does);
``errors`` are requests that ended in a 5xx status (a 4xx is the caller's doing, the
same for every arm). Latencies are those of the successful requests.

``compare_shadow`` joins a shadow's rows with the champion's on the prediction id
(a shadow's copy is logged with the request id of the original) and says how often
they agree, how far apart their scores are, and where they differ most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from modelport.domain.deployments import Arm, ArmRole
from modelport.errors import InvalidArgumentError
from modelport.monitoring.feedback.logdb import columns_of, log_database, quoted
from modelport.monitoring.performance import (
    PROBABILITIES,
    guess_task,
    labelled_rows,
    prediction_column,
)
from modelport.monitoring.prediction_log.records import INPUT_PREFIX
from modelport.monitoring.prediction_log.segments import open_root, prediction_files

DEPLOYMENT_COLUMN = "deployment"
ARM_COLUMN = "arm"
LATENCY_SAMPLE = 2000  # per-request latencies kept per arm for the Mann-Whitney test
_SAMPLE_SEED = 7
_SHADOW_PREFIX = ArmRole.SHADOW.value


@dataclass
class ArmStats:
    """One arm's traffic, errors, latency and live metrics over a window."""

    arm: str
    model: str
    version: int
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    labelled: int = 0
    correct: int = 0
    accuracy: float | None = None  # classification only; None without labels
    mean_score: float | None = None  # mean of the score column over successful rows
    score_std: float | None = None  # its sample standard deviation (ddof=1)
    scored: int = 0  # rows with a score
    score_column: str | None = None
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # a sample

    @property
    def error_rate(self) -> float | None:
        """Errors over requests (None without requests)."""
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the latency sample left out)."""
        return {
            "arm": self.arm,
            "model": self.model,
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "labelled": self.labelled,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "score_column": self.score_column,
            "mean_score": self.mean_score,
            "score_std": self.score_std,
            "scored": self.scored,
        }


def arm_stats(
    log_uri: str,
    deployment: str,
    arms: Sequence[Arm],
    *,
    since: datetime,
    until: datetime | None = None,
    score: str | None = None,
    latency_sample: int = LATENCY_SAMPLE,
) -> dict[str, ArmStats]:
    """Each arm's numbers over ``[since, until)`` (timezone-aware), by arm name.

    ``score`` names a logged numeric column to average (``out_revenue``, ``in_amount``);
    by default the prediction when it is a number."""
    _check_window(since, until)
    return {
        arm.name: _one_arm(
            log_uri, deployment, arm, since=since, until=until, score=score, sample=latency_sample
        )
        for arm in arms
    }


def _check_window(since: datetime, until: datetime | None) -> None:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidArgumentError(f"{name}={moment} is naive: give a timezone-aware time")


def _one_arm(
    log_uri: str,
    deployment: str,
    arm: Arm,
    *,
    since: datetime,
    until: datetime | None,
    score: str | None,
    sample: int,
) -> ArmStats:
    stats = ArmStats(arm.name, arm.model, arm.version)
    version = str(arm.version)
    with log_database(log_uri, arm.model, version=version, since=since, until=until) as db:
        logged = columns_of(db, "predictions")
        where = arm_filter(logged, deployment, arm, since, until)
        if where is None:
            return stats
        db.execute(f"CREATE VIEW arm_rows AS SELECT * FROM predictions WHERE {where}")  # noqa: S608
        db.execute("CREATE VIEW window_rows AS SELECT * FROM arm_rows WHERE status < 400")
        _count(db, stats)
        stats.latency_p50_ms, stats.latency_p99_ms, stats.latencies_ms = latencies(
            db, "arm_rows", sample
        )
        _accuracy(db, logged, stats)
        _score(db, logged, stats, score)
    return stats


def arm_filter(
    logged: dict[str, str],
    deployment: str,
    arm: Arm,
    since: datetime,
    until: datetime | None,
) -> str | None:
    """The SQL condition picking ``arm``'s rows of a window (None: the log has none)."""
    if DEPLOYMENT_COLUMN not in logged:
        return None  # only segments from before deployments: no row is the deployment's
    has_arm = ARM_COLUMN in logged
    conditions = [
        f"{DEPLOYMENT_COLUMN} = {_literal(deployment)}",
        f"time >= {_timestamp(since)}",
    ]
    if until is not None:
        conditions.append(f"time < {_timestamp(until)}")
    if not arm.live:
        if not has_arm:
            return None
        conditions.append(f"{ARM_COLUMN} = {_literal(arm.name)}")
    elif has_arm:
        conditions.append(
            f"({ARM_COLUMN} IS NULL OR NOT starts_with({ARM_COLUMN}, '{_SHADOW_PREFIX}'))"
        )
    return " AND ".join(conditions)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _timestamp(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def _count(db: duckdb.DuckDBPyConnection, stats: ArmStats) -> None:
    row = db.execute(
        "SELECT count(DISTINCT request_id), "
        "count(DISTINCT request_id) FILTER (WHERE status >= 500) FROM arm_rows"
    ).fetchone()
    stats.requests, stats.errors = (int(row[0]), int(row[1])) if row else (0, 0)


def latencies(
    db: duckdb.DuckDBPyConnection, view: str, sample: int
) -> tuple[float | None, float | None, np.ndarray]:
    """p50 and p99 (linear interpolation, as numpy's percentile) of the successful
    requests' latencies in ms, and a reservoir sample of at most ``sample`` of them."""
    db.execute(
        f"CREATE TEMP TABLE {view}_latency AS SELECT max(latency_s) * 1000 AS ms "  # noqa: S608
        f"FROM {view} WHERE status < 400 GROUP BY request_id"
    )
    row = db.execute(
        f"SELECT quantile_cont(ms, 0.5), quantile_cont(ms, 0.99) FROM {view}_latency"  # noqa: S608
    ).fetchone()
    p50, p99 = (row[0], row[1]) if row else (None, None)
    values = db.execute(
        f"SELECT ms FROM {view}_latency "  # noqa: S608
        f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({_SAMPLE_SEED})"
    ).fetchnumpy()["ms"]
    return (
        float(p50) if p50 is not None else None,
        float(p99) if p99 is not None else None,
        np.asarray(values, dtype=np.float64),
    )


def _accuracy(db: duckdb.DuckDBPyConnection, logged: dict[str, str], stats: ArmStats) -> None:
    prediction = prediction_column(logged)
    if prediction is None or logged[prediction].endswith("]"):
        return
    joined, numeric = labelled_rows(db, logged, prediction)
    stats.labelled = joined.num_rows
    if not stats.labelled:
        return
    if numeric:
        y_pred = joined.column("pred").to_numpy()
        y_true = joined.column("label").to_numpy()
    else:
        y_pred = np.asarray(joined.column("pred").to_pylist(), dtype=object)
        y_true = np.asarray(joined.column("label").to_pylist(), dtype=object)
    has_proba = joined.column("proba").null_count < joined.num_rows
    if guess_task(numeric, logged[prediction], has_proba, y_true, y_pred) != "classification":
        return  # a regression's predictions are never exactly right: no accuracy
    stats.correct = int(np.sum(y_pred == y_true))
    stats.accuracy = stats.correct / stats.labelled


def _score(
    db: duckdb.DuckDBPyConnection, logged: dict[str, str], stats: ArmStats, score: str | None
) -> None:
    column = score if score is not None else prediction_column(logged)
    if column is None or column not in logged or logged[column].endswith("]"):
        return
    if score is None and logged[column] in ("VARCHAR", "BOOLEAN"):
        return  # class names: nothing to average
    value = f"TRY_CAST({quoted(column)} AS DOUBLE)"
    row = db.execute(
        f"SELECT avg({value}), stddev_samp({value}), count({value}) FROM window_rows"  # noqa: S608
    ).fetchone()
    if not row or not row[2]:
        return
    stats.score_column = column
    stats.mean_score = float(row[0])
    stats.score_std = float(row[1]) if row[1] is not None else None
    stats.scored = int(row[2])


# ---------------------------------------------------------------------------- shadow


@dataclass
class ShadowComparison:
    """A shadow's answers against the champion's for the same requests."""

    deployment: str
    champion: str  # the arms' refs, model/version
    shadow: str
    rows: int = 0  # rows both answered successfully
    shadow_rows: int = 0  # rows the shadow logged in the window
    shadow_errors: int = 0  # shadow requests that ended in a 5xx
    agreeing: int = 0
    agreement_rate: float | None = None  # share of rows with the same prediction
    scored_rows: int = 0
    mean_abs_diff: float | None = None  # of the scores: probabilities, else predictions
    max_abs_diff: float | None = None
    worst: list[dict[str, Any]] = field(default_factory=list)
    champion_latency_p50_ms: float | None = None
    champion_latency_p99_ms: float | None = None
    shadow_latency_p50_ms: float | None = None
    shadow_latency_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def compare_shadow(
    log_uri: str,
    deployment: str,
    champion: Arm,
    shadow: Arm,
    *,
    since: datetime,
    until: datetime | None = None,
    top: int = 10,
) -> ShadowComparison:
    """Agreement, score differences, the ``top`` rows where they differ most, and both
    arms' latency over ``[since, until)``."""
    _check_window(since, until)
    result = ShadowComparison(deployment, champion.ref, shadow.ref)
    fs, _ = open_root(log_uri)
    db = duckdb.connect()
    try:
        if not isinstance(fs, LocalFileSystem):
            db.register_filesystem(fs)
        both = {}
        for view, arm in (("champion_rows", champion), ("shadow_rows", shadow)):
            logged = _arm_view(
                db, view, log_uri, deployment=deployment, arm=arm, since=since, until=until
            )
            if logged is None:
                return result
            both[view] = logged
        _shadow_counts(db, result)
        result.champion_latency_p50_ms, result.champion_latency_p99_ms, _ = latencies(
            db, "champion_rows", 0
        )
        result.shadow_latency_p50_ms, result.shadow_latency_p99_ms, _ = latencies(
            db, "shadow_rows", 0
        )
        _agreement(db, result, both["champion_rows"], both["shadow_rows"], top)
    finally:
        db.close()
    return result


def _arm_view(
    db: duckdb.DuckDBPyConnection,
    view: str,
    log_uri: str,
    *,
    deployment: str,
    arm: Arm,
    since: datetime,
    until: datetime | None,
) -> dict[str, str] | None:
    """Create ``view`` over ``arm``'s rows; its columns, or None when it has none."""
    fs, files = prediction_files(log_uri, arm.model, str(arm.version), since, until)
    if not files:
        return None
    if not isinstance(fs, LocalFileSystem):
        files = [fs.unstrip_protocol(path) for path in files]
    listed = ", ".join(_literal(path) for path in files)
    source = f"read_parquet([{listed}], union_by_name = true)"
    db.execute(f"CREATE VIEW {view}_all AS SELECT * FROM {source}")  # noqa: S608
    logged = columns_of(db, f"{view}_all")
    where = arm_filter(logged, deployment, arm, since, until)
    if where is None:
        return None
    db.execute(f"CREATE VIEW {view} AS SELECT * FROM {view}_all WHERE {where}")  # noqa: S608
    return logged


def _shadow_counts(db: duckdb.DuckDBPyConnection, result: ShadowComparison) -> None:
    row = db.execute(
        "SELECT count(*), count(DISTINCT request_id) FILTER (WHERE status >= 500) FROM shadow_rows"
    ).fetchone()
    result.shadow_rows, result.shadow_errors = (int(row[0]), int(row[1])) if row else (0, 0)


def _agreement(
    db: duckdb.DuckDBPyConnection,
    result: ShadowComparison,
    champion: dict[str, str],
    shadow: dict[str, str],
    top: int,
) -> None:
    c_pred, s_pred = prediction_column(champion), prediction_column(shadow)
    if c_pred is None or s_pred is None:
        return
    numeric = _is_number(champion[c_pred]) and _is_number(shadow[s_pred])
    kind = "DOUBLE" if numeric else "VARCHAR"
    c_value = f"CAST(c.{quoted(c_pred)} AS {kind})"
    s_value = f"CAST(s.{quoted(s_pred)} AS {kind})"
    diff = _score_difference(
        db, champion, shadow, c_value=c_value, s_value=s_value, numeric=numeric
    )
    db.execute(
        f"CREATE TEMP TABLE pairs AS SELECT c.prediction_id, c.time, {c_value} AS champion, "  # noqa: S608
        f"{s_value} AS shadow, {c_value} IS NOT DISTINCT FROM {s_value} AS agree, "
        f"{diff} AS diff FROM champion_rows c JOIN shadow_rows s USING (prediction_id) "
        "LEFT JOIN probability_diff d USING (prediction_id) "
        "WHERE c.status < 400 AND s.status < 400"
    )
    row = db.execute(
        "SELECT count(*), count_if(agree), count(diff), avg(diff), max(diff) FROM pairs"
    ).fetchone()
    if not row or not row[0]:
        return
    result.rows, result.agreeing, result.scored_rows = int(row[0]), int(row[1]), int(row[2])
    result.agreement_rate = result.agreeing / result.rows
    result.mean_abs_diff = float(row[3]) if row[3] is not None else None
    result.max_abs_diff = float(row[4]) if row[4] is not None else None
    result.worst = _worst(db, champion, top)


def _is_number(duck_type: str) -> bool:
    return not duck_type.endswith("]") and duck_type not in ("VARCHAR", "BOOLEAN")


def _score_difference(
    db: duckdb.DuckDBPyConnection,
    champion: dict[str, str],
    shadow: dict[str, str],
    *,
    c_value: str,
    s_value: str,
    numeric: bool,
) -> str:
    """Per row: the largest absolute difference of the class probabilities when both
    logged them (the table ``probability_diff``), else of the predictions when they are
    numbers, else NULL."""
    p = quoted(PROBABILITIES)
    if PROBABILITIES in champion and PROBABILITIES in shadow:
        # unnest zips the two lists (no lambda: its syntax differs across DuckDB versions)
        db.execute(
            "CREATE TEMP TABLE probability_diff AS SELECT prediction_id, max(abs(a - b)) AS pd "  # noqa: S608
            f"FROM (SELECT c.prediction_id, unnest(c.{p}) AS a, unnest(s.{p}) AS b "
            "FROM champion_rows c JOIN shadow_rows s USING (prediction_id) "
            f"WHERE len(c.{p}) = len(s.{p})) GROUP BY prediction_id"
        )
        return "d.pd"
    db.execute("CREATE TEMP TABLE probability_diff (prediction_id VARCHAR, pd DOUBLE)")
    if numeric:
        return f"abs({c_value} - {s_value})"
    return "NULL::DOUBLE"


def _worst(
    db: duckdb.DuckDBPyConnection, champion: dict[str, str], top: int
) -> list[dict[str, Any]]:
    """The rows where the two differ most (disagreements first), with the inputs."""
    inputs = [name for name in champion if name.startswith(INPUT_PREFIX)]
    selected = "".join(f", c.{quoted(name)}" for name in inputs)
    rows = db.execute(
        f"SELECT p.prediction_id, p.time, p.champion, p.shadow, p.diff{selected} "  # noqa: S608
        "FROM pairs p JOIN champion_rows c USING (prediction_id) "
        f"ORDER BY p.agree, p.diff DESC NULLS LAST, p.prediction_id LIMIT {int(top)}"
    ).fetchall()
    worst = []
    for row in rows:
        worst.append(
            {
                "prediction_id": row[0],
                "time": row[1].isoformat() if row[1] is not None else None,
                "champion": row[2],
                "shadow": row[3],
                "abs_diff": row[4],
                "inputs": {
                    name.removeprefix(INPUT_PREFIX): _plain(value)
                    for name, value in zip(inputs, row[5:], strict=True)
                },
            }
        )
    return worst


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
