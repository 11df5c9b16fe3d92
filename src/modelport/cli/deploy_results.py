"""``modelport deploy status|results|compare NAME``: what each arm did, and which is better.

``status`` shows each arm's traffic, errors, latency and live accuracy over a window;
``results`` adds each arm against the champion with a test, an interval, a p-value, the
rows still needed and a verdict; ``compare`` sets each shadow against the champion on
the same requests. ``attach(group)`` adds them to the ``deploy`` group.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from modelport.cli.output import print_fields, print_json, print_table
from modelport.cli.state import json_option, state

if TYPE_CHECKING:
    from modelport.domain.deployments import Deployment
    from modelport.monitoring.arms import ShadowComparison
    from modelport.rollout.results import DeploymentStatus


def attach(group: click.Group) -> None:
    """Add ``status``, ``results`` and ``compare`` to ``group`` (``modelport deploy``)."""
    for command in (status, results, compare):
        group.add_command(command)


def _window_options(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option("--until", help="Window end, same forms; default now.")(function)
        return click.option(
            "--since",
            default=default,
            show_default=True,
            help="Window start: a duration back from now (30m, 1h, 7d) or an ISO-8601 time.",
        )(function)

    return decorate


def _window(since: str, until: str | None) -> tuple[datetime, datetime | None]:
    from modelport.monitoring.windows import parse_since

    now = datetime.now(UTC)
    return parse_since(since, now), parse_since(until, now, field="until") if until else None


def _deployment(name: str) -> Deployment:
    return state().registry().get_deployment(name)


def _log_uri() -> str:
    return state().settings.resolved_prediction_log_uri


@click.command("status")
@click.argument("name")
@_window_options("1h")
@json_option
def status(name: str, since: str, until: str | None, as_json: bool) -> None:
    """NAME's arms and what each did: traffic, errors, p50/p99 latency, live accuracy."""
    from modelport.rollout.results import deployment_status

    start, end = _window(since, until)
    report = deployment_status(_log_uri(), _deployment(name), since=start, until=end)
    if as_json:
        print_json(report.to_dict())
        return
    print_arms(report)


@click.command("results")
@click.argument("name")
@_window_options("24h")
@click.option(
    "--confidence",
    type=float,
    default=0.95,
    show_default=True,
    help="Confidence of the intervals (and 1 - the p-value a verdict needs).",
)
@click.option(
    "--power", type=float, default=0.8, show_default=True, help="Power for the rows still needed."
)
@click.option(
    "--score",
    help="A logged numeric column to compare the means of "
    "(out_revenue, in_amount); default: the prediction when it is a number.",
)
@json_option
def results(
    *,
    name: str,
    since: str,
    until: str | None,
    confidence: float,
    power: float,
    score: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """A/B results of NAME: each arm against the champion, with a verdict.

    Accuracy and error rate use the two-proportion z-test, latency the Mann-Whitney U
    test, the mean score Welch's t-test.
    """
    from modelport.rollout.results import ResultsOptions, deployment_status

    start, end = _window(since, until)
    options = ResultsOptions(confidence=confidence, power=power, score=score)
    report = deployment_status(
        _log_uri(), _deployment(name), since=start, until=end, options=options, compare=True
    )
    if as_json:
        print_json(report.to_dict())
        return
    print_arms(report)
    print_comparisons(report)


@click.command("compare")
@click.argument("name")
@_window_options("24h")
@click.option("--shadow", "arm", help="The shadow arm to compare (default: every shadow).")
@click.option(
    "--top",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="How many of the rows where they differ most to show.",
)
@json_option
def compare(
    *, name: str, since: str, until: str | None, arm: str | None, top: int, as_json: bool
) -> None:  # fmt: skip
    """NAME's shadows against the champion on the same requests: agreement, score
    differences, the rows where they differ most, and the latency of both."""
    from modelport.rollout.results import shadow_comparisons

    start, end = _window(since, until)
    found = shadow_comparisons(
        _log_uri(), _deployment(name), since=start, until=end, shadow=arm, top=top
    )
    if as_json:
        print_json({"deployment": name, "shadows": [c.to_dict() for c in found]})
        return
    for comparison in found:
        print_shadow(comparison)


def print_arms(report: DeploymentStatus) -> None:
    """The arms table."""
    data = report.to_dict()
    click.echo(f"deployment {data['deployment']} (revision {data['revision']}), "
               f"{data['since']} .. {data['until'] or 'now'}")  # fmt: skip
    rows = [
        (
            a["name"],
            f"{a['model']}/{a['version']}",
            a["role"],
            f"{a['weight']:g}%" if a["role"] != "shadow" else f"sample {a['sample']:g}",
            _share(a["traffic_share"]),
            a["requests"],
            f"{a['errors']} ({_share(a['error_rate'])})" if a["requests"] else "0",
            _ms(a["latency_p50_ms"]),
            _ms(a["latency_p99_ms"]),
            _accuracy(a),
        )
        for a in data["arms"]
    ]
    columns = ["arm", "version", "role", "weight", "traffic", "requests", "errors",
               "p50", "p99", "accuracy"]  # fmt: skip
    print_table(None, columns, rows)


def print_comparisons(report: DeploymentStatus) -> None:
    """Each comparison with its numbers, then the verdicts."""
    if not report.comparisons:
        if len(report.deployment.arms) == 1:
            click.echo("nothing to compare: the deployment has only its champion")
        else:
            click.echo("nothing to compare yet: no other arm has rows in the window")
        return
    rows = [
        (
            f"{c.candidate} vs {c.baseline}",
            c.metric,
            c.test,
            f"{c.difference:+.3g} {c.unit}".strip(),
            f"[{c.ci_low:.3g}, {c.ci_high:.3g}]",
            f"{c.p_value:.3g}",
            "" if c.more_needed is None else c.more_needed,
        )
        for c in report.comparisons
    ]
    columns = ["arms", "metric", "test", "difference", "CI", "p", "rows still needed"]
    print_table(None, columns, rows)
    for comparison in report.comparisons:
        click.echo(f"- {comparison.verdict}")


def print_shadow(comparison: ShadowComparison) -> None:
    """One shadow's comparison and its worst rows."""
    c = comparison
    rate = None if c.agreement_rate is None else f"{c.agreement_rate:.2%} ({c.agreeing}/{c.rows})"
    print_fields(
        [
            ("shadow", f"{c.shadow} vs champion {c.champion}"),
            ("rows", f"{c.rows} answered by both ({c.shadow_rows} shadowed, "
                     f"{c.shadow_errors} shadow errors)"),
            ("agreement", rate or "no rows answered by both yet"),
            ("mean |diff|", _number(c.mean_abs_diff)),
            ("max |diff|", _number(c.max_abs_diff)),
            ("p50", f"champion {_ms(c.champion_latency_p50_ms)}, "
                    f"shadow {_ms(c.shadow_latency_p50_ms)}"),
            ("p99", f"champion {_ms(c.champion_latency_p99_ms)}, "
                    f"shadow {_ms(c.shadow_latency_p99_ms)}"),
        ]
    )  # fmt: skip
    if c.worst:
        rows = [
            (w["prediction_id"], w["champion"], w["shadow"], _number(w["abs_diff"]),
             ", ".join(f"{k}={v}" for k, v in w["inputs"].items()))
            for w in c.worst
        ]  # fmt: skip
        print_table("where they differ most", ["prediction", "champion", "shadow", "|diff|",
                                               "inputs"], rows)  # fmt: skip


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:.4g}"


def _accuracy(arm: dict[str, Any]) -> str:
    if arm["accuracy"] is None:
        return f"- ({arm['labelled']} labelled)" if arm["labelled"] else "-"
    return f"{arm['accuracy']:.1%} of {arm['labelled']}"
