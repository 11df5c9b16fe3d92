"""``modelport db upgrade|current``: the metadata database's schema."""

from __future__ import annotations

import click

from modelport.bootstrap import database_revision, upgrade_database
from modelport.cli.state import state


@click.group()
def db() -> None:
    """The metadata database."""


@db.command("upgrade")
def upgrade() -> None:
    """Migrate the metadata database to this release's schema (back it up first)."""
    before, after = upgrade_database(state().settings)
    if before == after:
        click.echo(f"the database is already at revision {after}")
    else:
        click.echo(f"upgraded the database from revision {before or 'none'} to {after}")


@db.command("current")
def current() -> None:
    """Show the database's schema revision and the one this release expects."""
    revision, head = database_revision(state().settings)
    status = "up to date" if revision == head else f"run `modelport db upgrade` to reach {head}"
    click.echo(f"revision {revision or 'none'} ({status})")
