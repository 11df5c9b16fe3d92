"""``modelport log export|tail|compact``: the prediction log the serving server writes.

REF is a model name (every version), ``churn/3`` (one version) or ``churn@production``
(the version the alias names now, looked up in the registry).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from modelport.cli.output import print_fields, print_json, print_table
from modelport.cli.state import json_option, state

FOLLOW_POLL_S = 1.0
_SHOWN_PREFIXES = ("id_", "out_")


@click.group()
def log() -> None:
    """The prediction log: every request the server answered, row by row."""


def _target(ref: str) -> tuple[str, str | None]:
    """The model and version (None: all of them) that ``ref`` names."""
    from modelport.domain.refs import parse_ref, parse_ref_or_name

    if "/" not in ref.removeprefix("models:/") and "@" not in ref:
        return parse_ref_or_name(ref).name, None
    parsed = parse_ref(ref)
    if parsed.version is not None:
        return parsed.name, str(parsed.version)
    return parsed.name, str(state().registry().version_number(parsed))


def _uri() -> str:
    return state().settings.resolved_prediction_log_uri


@log.command("export")
@click.argument("ref")
@click.option("--since", default="24h", show_default=True, help="30m, 24h, 7d or a timestamp.")
@click.option("--until", help="End of the window (excluded): a duration back or a timestamp.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The Parquet file to write.",
)
@json_option
def export(ref: str, since: str, until: str | None, out: Path, as_json: bool) -> None:
    """Write the logged rows of REF in a time window to one Parquet file."""
    import pyarrow.parquet as pq

    from modelport.monitoring.prediction_log import query
    from modelport.monitoring.windows import parse_since

    model, version = _target(ref)
    now = datetime.now(UTC)
    start = parse_since(since, now, field="since")
    end = parse_since(until, now, field="until") if until is not None else None
    table = query(_uri(), model, version, start, end)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    summary = {
        "model": model,
        "version": version,
        "since": start.isoformat(),
        "until": end.isoformat() if end is not None else None,
        "rows": table.num_rows,
        "columns": table.column_names,
        "out": str(out),
    }
    if as_json:
        print_json(summary)
        return
    print_fields(
        [
            ("model", model),
            ("version", version or "all"),
            ("window", f"{summary['since']} .. {summary['until'] or 'now'}"),
            ("rows", table.num_rows),
            ("written", str(out)),
        ]
    )


@log.command("tail")
@click.argument("ref")
@click.option("-n", "--lines", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--follow", "-f", is_flag=True, help="Keep printing new rows as they are logged.")
@json_option
def tail(ref: str, lines: int, follow: bool, as_json: bool) -> None:
    """Print the newest logged rows of REF (one JSON object per line under --json).

    Rows appear once the server has flushed them (every flush_interval_s, 1 s by default).
    """
    from modelport.monitoring.prediction_log import query

    model, version = _target(ref)
    uri = _uri()
    table = query(uri, model, version, last=lines)
    seen = _print_rows(table.to_pylist(), as_json=as_json, header=True)
    while follow:
        time.sleep(FOLLOW_POLL_S)
        since = seen[0] if seen[0] is not None else None
        rows = query(uri, model, version, since).to_pylist()
        fresh = [row for row in rows if row["prediction_id"] not in seen[1]]
        if fresh:
            seen = _print_rows(fresh, as_json=as_json, header=False, seen=seen)


def _print_rows(
    rows: list[dict[str, Any]],
    *,
    as_json: bool,
    header: bool,
    seen: tuple[datetime | None, set[str]] = (None, set()),
) -> tuple[datetime | None, set[str]]:
    """Print ``rows``; the newest time printed and the ids printed at that time (what
    ``--follow`` must not print again)."""
    newest, at_newest = seen
    for row in rows:
        if newest is None or row["time"] > newest:
            newest, at_newest = row["time"], set()
        if row["time"] == newest:
            at_newest.add(row["prediction_id"])
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return newest, at_newest
    shown = ["time", "prediction_id", "version", "protocol", "status", "latency_ms"]
    extra = sorted({k for row in rows for k in row if k.startswith(_SHOWN_PREFIXES)})
    table = [
        [
            row["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            row["prediction_id"],
            row["version"],
            row["protocol"],
            row["status"],
            f"{row['latency_s'] * 1000:.2f}",
            *(_short(row.get(name)) for name in extra),
        ]
        for row in rows
    ]
    if table or header:
        print_table(None, [*shown, *extra], table)
    return newest, at_newest


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return "" if value is None else str(value)


@log.command("compact")
@json_option
def compact_command(as_json: bool) -> None:
    """Merge each past day's small segments and delete days beyond retention_days (the
    server does this every maintenance_interval_s; this runs it now)."""
    from modelport.monitoring.prediction_log.maintenance import LogMaintenance

    settings = state().settings
    merged, deleted = LogMaintenance(
        settings.prediction_log, settings.resolved_prediction_log_uri
    ).run_once()
    result = {
        "uri": settings.resolved_prediction_log_uri,
        "segments_merged": merged,
        "days_deleted": deleted,
        "retention_days": settings.prediction_log.retention_days,
    }
    if as_json:
        print_json(result)
        return
    print_fields(list(result.items()))
