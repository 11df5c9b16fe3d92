"""``modelport db upgrade|current``: the metadata database's schema."""

from __future__ import annotations

import click

from modelport.bootstrap import database_revision, upgrade_database
from modelport.cli.output import print_json
from modelport.cli.state import json_option, state


@click.group()
def db() -> None:
    """The metadata database."""


@db.command("upgrade")
@json_option
def upgrade(as_json: bool) -> None:
    """Migrate the metadata database to this release's schema (back it up first)."""
    cli = state()
    cli.require_database("modelport db upgrade")
    before, after = upgrade_database(cli.settings)
    if as_json:
        print_json({"before": before, "after": after, "upgraded": before != after})
    elif before == after:
        click.echo(f"the database is already at revision {after}")
    else:
        click.echo(f"upgraded the database from revision {before or 'none'} to {after}")


@db.command("current")
@json_option
def current(as_json: bool) -> None:
    """Show the database's schema revision and the one this release expects."""
    cli = state()
    cli.require_database("modelport db current")
    revision, head = database_revision(cli.settings)
    if as_json:
        print_json({"revision": revision, "head": head, "up_to_date": revision == head})
        return
    status = "up to date" if revision == head else f"run `modelport db upgrade` to reach {head}"
    click.echo(f"revision {revision or 'none'} ({status})")
