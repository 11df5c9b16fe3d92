"""Which logged rows are an arm's: the SQL shared by ``arms`` and ``shadows``.

An arm's rows are the logged rows under its ``<model>/<version>/`` directories whose
``deployment`` column names the deployment. A shadow arm's rows are those logged with
its arm name; a live arm's are the deployment's rows that no shadow logged (so a
canary keeps its rows once promoted to champion: the version, not the arm's name,
says who answered). Segments written before the log had ``deployment`` and ``arm``
columns read them as NULL: their rows belong to no deployment.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np

from modelport.domain.deployments import Arm, ArmRole
from modelport.errors import InvalidArgumentError

DEPLOYMENT_COLUMN = "deployment"
ARM_COLUMN = "arm"
_SAMPLE_SEED = 7
_SHADOW_PREFIX = ArmRole.SHADOW.value


def check_window(since: datetime, until: datetime | None) -> None:
    """Raise ``InvalidArgumentError`` for a naive bound."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidArgumentError(f"{name}={moment} is naive: give a timezone-aware time")


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
        f"{DEPLOYMENT_COLUMN} = {literal(deployment)}",
        f"time >= {timestamp(since)}",
    ]
    if until is not None:
        conditions.append(f"time < {timestamp(until)}")
    if not arm.live:
        if not has_arm:
            return None
        conditions.append(f"{ARM_COLUMN} = {literal(arm.name)}")
    elif has_arm:
        conditions.append(
            f"({ARM_COLUMN} IS NULL OR NOT starts_with({ARM_COLUMN}, '{_SHADOW_PREFIX}'))"
        )
    return " AND ".join(conditions)


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def timestamp(moment: datetime) -> str:
    """An aware datetime as a DuckDB TIMESTAMPTZ literal."""
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


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
