"""``modelport monitor performance REF``: live metrics of logged predictions vs labels.

``performance`` is attached to the ``monitor`` group in ``cli/monitor.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from modelport.cli.output import print_fields, print_json, print_table
from modelport.cli.state import json_option, state
from modelport.domain.refs import SCHEME, parse_ref_or_name


@click.command("performance")
@click.argument("ref")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Window start: a duration back from now (30m, 1h, 7d) or an ISO-8601 time.",
)
@click.option("--until", help="Window end, same forms; default now.")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="Override the task guessed from the log.",
)
@json_option
def performance(ref: str, since: str, until: str | None, task: str | None, as_json: bool) -> None:
    """Live performance of REF's logged predictions against the labels received.

    REF is NAME (every version), NAME/VERSION or NAME@ALIAS (that version, resolved in
    the registry).
    """
    from modelport.monitoring.performance import live_performance
    from modelport.monitoring.windows import parse_since

    name, version = _target(ref)
    now = datetime.now(UTC)
    report = live_performance(
        state().settings.resolved_prediction_log_uri,
        name,
        version=version,
        since=parse_since(since, now),
        until=parse_since(until, now, field="until") if until else None,
        task=task,  # type: ignore[arg-type]  # click.Choice
    )
    if as_json:
        print_json(report.to_dict())
        return
    data = report.to_dict()
    print_fields(
        [
            ("model", data["model"]),
            ("version", data["version"] or "all"),
            ("window", f"{data['since']} .. {data['until'] or 'now'}"),
            ("task", data["task"] or "unknown (no labeled predictions)"),
            ("predictions", str(data["predictions"])),
            ("labeled", str(data["labeled"])),
            ("coverage", f"{report.coverage:.1%}"),
            ("unmatched", str(data["unmatched_labels"])),
            ("positive", data["positive_class"]),
        ]
    )
    if report.metrics:
        print_table(None, ["metric", "value"], [(k, f"{v:.4f}") for k, v in report.metrics.items()])


def _target(ref: str) -> tuple[str, str | None]:
    """(model name, version or None for all): a bare name needs no registry."""
    parsed = parse_ref_or_name(ref)
    body = ref.removeprefix(SCHEME)
    if "/" not in body and "@" not in body:
        return parsed.name, None
    return parsed.name, str(state().registry().resolve(parsed).version)
