"""``modelport monitor ...``: what the prediction log says about served models.

This module holds the group and ``drift``; the other monitor commands live in their own
modules and are attached at the end (``performance``, ``run``, ``rules``, ``alerts``).
"""

from __future__ import annotations

import click

from modelport.cli.inputs import parse_pairs
from modelport.cli.output import print_fields, print_json, print_table
from modelport.cli.state import json_option, state
from modelport.errors import MissingStatisticsError


@click.group()
def monitor() -> None:
    """Monitoring over the prediction log: drift, live performance, alert rules, reports."""


@monitor.command("drift")
@click.argument("ref")
@click.option(
    "--since",
    default="1h",
    show_default=True,
    help="Window start: a duration back from now (30m, 1h, 24h, 7d) or an ISO-8601 time.",
)
@click.option("--until", default=None, help="Window end (same forms); default now.")
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="COLUMN=METHOD",
    help="A column's test: ks, chisquare, z, wasserstein, jensenshannon, psi (repeatable).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="A column's threshold: p-value below, or distance at or above which it drifts.",
)
@json_option
def drift(
    ref: str,
    *,
    since: str,
    until: str | None,
    methods: tuple[str, ...],
    thresholds: tuple[str, ...],
    as_json: bool,
) -> None:
    """Drift of the version REF names (churn@production, churn/3) over a window of the
    prediction log, against its reference statistics."""
    from modelport.monitoring.drift.selection import parse_options
    from modelport.monitoring.drift_window import drift_over_log, missing_statistics
    from modelport.monitoring.windows import parse_since

    options = parse_options(
        parse_pairs(methods, "--method"), parse_pairs(thresholds, "--threshold")
    )
    start = parse_since(since)
    end = parse_since(until, field="until") if until is not None else None
    cli_state = state()
    registry = cli_state.registry()
    version = registry.resolve(ref)
    stats, _origin = registry.reference_stats(version)
    if stats is None:
        raise missing_statistics(version.name, version.version, "it has no reference statistics")
    try:
        window = drift_over_log(
            cli_state.settings.resolved_prediction_log_uri,
            version.name,
            stats,
            version=str(version.version),
            since=start,
            until=end,
            options=options,
        )
    except MissingStatisticsError as exc:
        raise missing_statistics(version.name, version.version, exc.message) from None
    if as_json:
        print_json(window.to_dict())
        return
    data = window.to_dict()
    print_fields(
        [
            ("model", f"{version.name} version {version.version}"),
            ("window", f"{data['since'] or 'start'} .. {data['until'] or 'now'}"),
            ("rows", data["rows"]),
            ("drifted", f"{data['drifted_columns']} of {len(data['columns'])} columns"),
            ("dataset", "drifted" if data["dataset_drift"] else "not drifted"),
            ("untested", data["untested"]),
        ]
    )
    for note in data["notes"]:
        click.echo(f"note: {note}")
    if data["columns"]:
        rows = [
            (c["column"], c["method"], f"{c['score']:.4g}", f"{c['threshold']:g}",
             "yes" if c["drifted"] else "no")
            for c in data["columns"]
        ]  # fmt: skip
        print_table(None, ["column", "method", "score", "threshold", "drifted"], rows)


def _attach() -> None:
    # The other monitor commands live in modules of their own.
    from modelport.cli.monitor_alerts import register
    from modelport.cli.monitor_performance import performance
    from modelport.cli.monitor_report import report

    monitor.add_command(performance)
    monitor.add_command(report)
    register(monitor)


_attach()
