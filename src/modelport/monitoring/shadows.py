"""A shadow arm against the champion on the same requests, from the prediction log.

A shadow's copy of a request is logged with the request id of the original, so the two
arms' rows join on the prediction id (``arm_rows`` says which rows are whose). The
comparison says how often they agree, how far apart their scores are, where they differ
most (with the inputs), and the latency of both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
from fsspec.implementations.local import LocalFileSystem

from modelport.domain.deployments import Arm
from modelport.monitoring.arm_rows import arm_filter, check_window, latencies, literal
from modelport.monitoring.feedback.logdb import columns_of, quoted
from modelport.monitoring.performance import PROBABILITIES, prediction_column
from modelport.monitoring.prediction_log.records import INPUT_PREFIX
from modelport.monitoring.prediction_log.segments import open_root, prediction_files


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
    check_window(since, until)
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
    listed = ", ".join(literal(path) for path in files)
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
