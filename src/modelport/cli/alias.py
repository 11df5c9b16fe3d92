"""``modelport alias list|set|delete``."""

from __future__ import annotations

import click

from modelport.cli.moves import report_move
from modelport.cli.output import print_json, print_table, warnings_on_stderr
from modelport.cli.state import json_option, state
from modelport.domain.names import is_stage


@click.group()
def alias() -> None:
    """Aliases (champion, canary, ...) and the stages staging and production, pointing at
    versions. Archived is a status, not an alias: see `modelport version archive`."""


@alias.command("list")
@click.argument("name", required=False)
@json_option
def list_aliases(name: str | None, as_json: bool) -> None:
    """List the aliases and stages of model NAME, or of every model."""
    registry = state().registry()
    models = [registry.get_model(name)] if name is not None else registry.list_models()
    rows = [
        {"name": model.name, "alias": alias_name, "version": number, "stage": is_stage(alias_name)}
        for model in models
        for alias_name, number in sorted(model.aliases.items())
    ]
    if as_json:
        print_json(rows)
        return
    table = [
        (row["name"], row["alias"], row["version"], "stage" if row["stage"] else "alias")
        for row in rows
    ]
    print_table(None, ["name", "alias", "version", "kind"], table)


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
@click.option(
    "--skip-gates",
    metavar="REASON",
    help="Do not run the promotion gates that guard ALIAS; REASON goes in the audit trail.",
)
@json_option
def set_alias(
    *, name: str, alias_name: str, number: int, force: bool, skip_gates: str | None, as_json: bool
) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere).

    A version without a signature (registered without --sample) is refused in
    production and takes other aliases with a warning, unless --force. ALIAS staging
    or production promotes VERSION, as `modelport version promote` does (production
    runs the promotion gates first).
    """
    with warnings_on_stderr(as_json=as_json):
        move = state().registry().move(name, alias_name, number, force=force, skip_gates=skip_gates)
    report_move(move, as_json=as_json)


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@json_option
def delete_alias(name: str, alias_name: str, as_json: bool) -> None:
    """Remove ALIAS from model NAME."""
    state().registry().delete_alias(name, alias_name)
    if as_json:
        print_json({"deleted": {"name": name, "alias": alias_name}})
    else:
        click.echo(f"deleted {name}@{alias_name}")
