"""``modelport alias set|delete``."""

from __future__ import annotations

import click

from modelport.cli.output import warnings_on_stderr
from modelport.cli.state import state


@click.group()
def alias() -> None:
    """Aliases (champion, canary, ...) and stages pointing at versions."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@click.option(
    "--force",
    is_flag=True,
    help="Point it at a version without a signature anyway (production refuses one "
    "otherwise, other aliases warn); the audit trail records it.",
)
def set_alias(name: str, alias_name: str, number: int, force: bool) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere).

    A version without a signature (registered without --sample) is refused in
    production and takes other aliases with a warning, unless --force.
    """
    with warnings_on_stderr():
        found = state().registry().set_alias(name, alias_name, number, force=force)
    click.echo(f"{name}@{alias_name} -> {found.version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
def delete_alias(name: str, alias_name: str) -> None:
    """Remove ALIAS from model NAME."""
    state().registry().delete_alias(name, alias_name)
    click.echo(f"deleted {name}@{alias_name}")
