"""``modelport monitor report REF --since 30d --out report.html [--format html|json]``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelport.cli.inputs import parse_pairs, version_ref
from modelport.cli.output import print_json
from modelport.cli.state import json_option, state

if TYPE_CHECKING:
    from modelport.monitoring.report import MonitoringReport


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
    page opens offline (no script, font or stylesheet to fetch).
    """
    from modelport.monitoring.drift.selection import parse_options
    from modelport.monitoring.report import Sources, Subject, build_report, render
    from modelport.monitoring.report.history import alert_source
    from modelport.monitoring.windows import parse_since

    options = parse_options(
        parse_pairs(methods, "--method"), parse_pairs(thresholds, "--threshold")
    )
    fmt = fmt or ("json" if out is not None and out.suffix.lower() == ".json" else "html")
    now = datetime.now(UTC)
    start = parse_since(since, now, field="since")
    end = parse_since(until, now, field="until") if until else now
    cli = state()
    registry = cli.local_registry("modelport monitor report")
    version = registry.resolve(version_ref(ref))
    subject = Subject(
        log_uri=cli.settings.resolved_prediction_log_uri,
        model=version.name,
        version=str(version.version),
        stats=registry.reference_stats(version)[0],
        registered_metrics=dict(version.metrics),
        drift_options=options,
    )
    sources = Sources.default(alerts=alert_source(registry.metadata, version.name))
    built = build_report(subject, start, end, sources=sources, now=now)
    text = render(built, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    if out is not None:
        _say_written(built, out, fmt, len(text.encode()), as_json=as_json)


def _say_written(built: MonitoringReport, out: Path, fmt: str, size: int, *, as_json: bool) -> None:
    drift = built.drift
    if as_json:
        print_json(
            {
                "out": str(out),
                "format": fmt,
                "bytes": size,
                "model": built.model,
                "version": built.version,
                "since": built.window.since.isoformat(),
                "until": built.window.until.isoformat(),
                "predictions": built.serving.rows,
                "drifted_columns": drift.drifted_columns if drift else None,
                "dataset_drift": drift.dataset_drift if drift else None,
                "notes": list(built.notes),
            }
        )
        return
    summary = f"{built.serving.rows:,} predictions"
    if drift is not None:
        summary += f", {drift.drifted_columns} of {len(drift.columns)} columns drifted"
    what = f"{built.model} version {built.version}"
    click.echo(f"wrote {out} ({size / 1024:.0f} KiB): {what}, {summary}")
    for note in built.notes:
        click.echo(f"note: {note}", err=True)
