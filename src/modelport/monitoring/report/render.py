"""The report as one self-contained HTML page, or as JSON.

The page has its CSS inline and its charts as inline SVG: no script, no font, no
image or stylesheet to fetch, so it opens offline and from an e-mail attachment.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import jinja2

from modelport.monitoring.report import charts
from modelport.monitoring.report.aggregates import number
from modelport.monitoring.report.model import MonitoringReport

FORMATS = ("html", "json")
# Distances are drifted at or above the threshold; p-values below it.
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})  # errors: a rise is worse


def render(report: MonitoringReport, fmt: str = "html") -> str:
    """The report as an HTML page or a JSON document."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        charts=report_charts(report),
        p_values=P_VALUE_METHODS,
        lower_better=LOWER_IS_BETTER,
    )


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("modelport.monitoring.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the render, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(pct=_pct, ms=_ms, num=_num, score=_score, when=_when, count=_count)
    return environment


def report_charts(report: MonitoringReport) -> dict[str, Any]:
    """Every chart of the page, drawn once here so the template only places them."""
    timeline = report.timeline
    starts = [b.start for b in timeline]
    drifted = {c.column for c in report.drift.columns if c.drifted} if report.drift else set()
    result: dict[str, Any] = {
        "volume": charts.columns(
            starts,
            [float(b.rows) for b in report.timeline],
            highlight=[float(b.errors) for b in report.timeline],
        ),
        "latency": charts.lines(
            starts,
            [
                charts.Series("p50", [b.latency_p50_s for b in report.timeline], charts.CURRENT),
                charts.Series("p99", [b.latency_p99_s for b in report.timeline], "#f59e0b"),
            ],
            fmt=charts.milliseconds,
        ),
        "errors": charts.lines(
            starts,
            [charts.Series("error rate", [b.error_rate for b in report.timeline], charts.DRIFTED)],
            fmt=charts.percent,
        ),
        "histograms": {
            h.column: charts.paired_bars(
                h.labels,
                h.reference_shares,
                h.current_shares,
                edges=[number(e) for e in h.edges] if h.edges and len(h.edges) > 1 else None,
                drifted=h.column in drifted,
            )
            for h in report.histograms
        },
    }
    if report.drift is not None:
        result["drift"] = charts.lines(
            starts,
            [
                charts.Series(
                    "drifted share", [b.drift_share for b in report.timeline], charts.CURRENT
                )
            ],
            fmt=charts.percent,
            threshold=report.drift.drift_share,
        )
    if report.timeline_metric is not None:
        result["metric"] = charts.lines(
            starts,
            [
                charts.Series(
                    report.timeline_metric, [b.metric for b in report.timeline], "#0d9488"
                ),
                charts.Series(
                    "label coverage", [b.coverage for b in report.timeline], charts.REFERENCE
                ),
            ],
            fmt=charts.plain,
        )
    return result


def _pct(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if value * 100 < 99.95 or value >= 1 else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def _score(value: float, method: str) -> str:
    """p-values in scientific notation when tiny, distances with 3 decimals."""
    if method in P_VALUE_METHODS and 0 < value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3f}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _when(moment: datetime, precise: bool = False) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if precise else "%Y-%m-%d %H:%M UTC")
