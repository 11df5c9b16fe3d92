"""``modelport monitor report REF --since 30d --out report.html [--format html|json]``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from modelport.cli.inputs import parse_pairs, version_ref
from modelport.cli.output import print_json
from modelport.cli.state import json_option, state
from modelport.domain.refs import ModelRef


@click.command("report")
@click.argument("ref")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="Start of the window: a duration back from now (30m, 24h, 30d) or an ISO-8601 time.",
)
@click.option("--until", help="End of the window (default: now), in the same forms as --since.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (default: stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "json"]),
    help="html (one self-contained page) or json (the same numbers); default: from --out's "
    "suffix, else html.",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="COLUMN=METHOD",
    help="A column's drift test, as for monitor drift: ks, chisquare, z, wasserstein, "
    "jensenshannon, psi (repeatable).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="A column's drift threshold, as for monitor drift (repeatable).",
)
@json_option
def report(
    *,
    ref: str,
    since: str,
    until: str | None,
    out: Path | None,
    fmt: str | None,
    methods: tuple[str, ...],
    thresholds: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write a monitoring report of REF (churn@production, churn/3) over a window.

    The report covers the prediction log's rows of the version REF names: volume,
    latency, errors, label coverage and live metrics beside the registered ones, drift
    per feature, histograms of reference against current data, all of these over time,
    and the alert history. It holds aggregates only, never a logged row, and the HTML
    page opens offline (no script, font or stylesheet to fetch). When
    MODELPORT_REGISTRY_URL is set, the control plane builds it from its prediction log
    and database (a key with read on the model) and this command writes it here.
    """
    from modelport.monitoring.windows import parse_since

    method_map, threshold_map = (
        parse_pairs(methods, "--method"),
        parse_pairs(thresholds, "--threshold"),
    )
    fmt = fmt or ("json" if out is not None and out.suffix.lower() == ".json" else "html")
    now = datetime.now(UTC)
    window = (
        parse_since(since, now, field="since"),
        parse_since(until, now, field="until") if until else now,
    )
    cli = state()
    ref_parsed = version_ref(ref)
    if cli.settings.registry_url is not None:
        from modelport.remote.monitoring import MonitoringCalls

        client = cli.registry()
        assert isinstance(client, MonitoringCalls)  # the URL is set: the HTTP client
        text, summary = client.monitoring_report(
            ref_parsed, window, fmt=fmt, methods=method_map, thresholds=threshold_map
        )
    else:
        text, summary = _local_report(
            ref_parsed,
            window=window,
            fmt=fmt,
            methods=method_map,
            thresholds=threshold_map,
            now=now,
        )
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    _say_written(summary, out, fmt, len(text.encode()), as_json=as_json)


def _local_report(
    ref: ModelRef,
    *,
    window: tuple[datetime, datetime],
    fmt: str,
    methods: dict[str, str],
    thresholds: dict[str, str],
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """The report built here, over the database and prediction log of the settings."""
    from modelport.monitoring.drift.selection import parse_options
    from modelport.monitoring.report import render
    from modelport.monitoring.report.versions import report_summary, version_report

    cli = state()
    built = version_report(
        cli.local_registry("modelport monitor report"),
        cli.settings.resolved_prediction_log_uri,
        ref,
        window,
        drift_options=parse_options(methods, thresholds),
        now=now,
    )
    return render(built, fmt), report_summary(built)


def _say_written(summary: dict[str, Any], out: Path, fmt: str, size: int, *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "out": str(out),
                "format": fmt,
                "bytes": size,
                **{key: value for key, value in summary.items() if key != "columns"},
            }
        )
        return
    text = f"{summary['predictions']:,} predictions"
    if summary["columns"] is not None:
        text += f", {summary['drifted_columns']} of {summary['columns']} columns drifted"
    what = f"{summary['model']} version {summary['version']}"
    click.echo(f"wrote {out} ({size / 1024:.0f} KiB): {what}, {text}")
    for note in summary["notes"]:
        click.echo(f"note: {note}", err=True)
