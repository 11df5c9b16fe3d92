"""``modelport alias set|delete``."""

from __future__ import annotations

import click

from modelport.cli.state import state


@click.group()
def alias() -> None:
    """Aliases (champion, canary, ...) and stages pointing at versions."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
def set_alias(name: str, alias_name: str, number: int) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere)."""
    found = state().registry().set_alias(name, alias_name, number)
    click.echo(f"{name}@{alias_name} -> {found.version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
def delete_alias(name: str, alias_name: str) -> None:
    """Remove ALIAS from model NAME."""
    state().registry().delete_alias(name, alias_name)
    click.echo(f"deleted {name}@{alias_name}")
