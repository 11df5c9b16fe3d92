"""``modelport audit list``."""

from __future__ import annotations

from datetime import datetime

import click

from modelport.cli.output import format_value, print_json, print_table, short_time
from modelport.cli.state import json_option, state


@click.group()
def audit() -> None:
    """The audit trail of registry changes."""


@audit.command("list")
@click.option("--model", "model_name", help="Only changes to this model.")
@click.option("--since", type=click.DateTime(), help="Only changes at or after this time (UTC).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@json_option
def list_entries(model_name: str | None, since: datetime | None, limit: int, as_json: bool) -> None:
    """List changes, newest first."""
    from datetime import UTC

    when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    entries = state().registry().get_audit_log(model_name, since=when, limit=limit)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    rows = [
        (
            short_time(e.timestamp),
            e.actor,
            e.action,
            e.model + (f"/{e.version}" if e.version is not None else ""),
            e.target,
            format_value(dict(e.before)) if e.before else "",
            format_value(dict(e.after)) if e.after else "",
        )
        for e in entries
    ]
    print_table(None, ["time", "actor", "action", "model", "target", "before", "after"], rows)
