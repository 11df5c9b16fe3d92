"""Saying what moving an alias or stage did: every change, in words or as JSON."""

from __future__ import annotations

import click

from modelport.cli.output import print_json
from modelport.domain.entities import AliasMove
from modelport.domain.names import Stage, is_stage
from modelport.domain.refs import SCHEME


def report_move(move: AliasMove, *, as_json: bool) -> None:
    """Print everything ``move`` did: the alias or stage moved and from where, a version
    brought back from the archive, the versions archived and the aliases they lost."""
    if as_json:
        print_json(move.to_dict())
        return
    for line in describe_move(move):
        click.echo(line)


def describe_move(move: AliasMove) -> list[str]:
    """One line per change ``move`` made."""
    version = move.version
    lines = []
    if is_stage(move.alias) and move.alias != Stage.ARCHIVED.value:
        forced = " (forced: it has no signature)" if "signature" in move.forced else ""
        lines.append(f"{version.ref} is now in {move.alias}{_moved(move, 'replacing')}{forced}")
    elif not is_stage(move.alias):
        lines.append(f"{version.name}@{move.alias} -> {version.version}{_moved(move, 'was')}")
    if move.restored:
        lines.append(f"{version.ref} was archived; it is active again")
    for archived in move.archived:
        ref = f"{SCHEME}{version.name}/{archived.version}"
        if archived.removed_aliases:
            lines.append(
                f"archived {ref}; removed its aliases: {', '.join(archived.removed_aliases)}"
            )
        else:
            lines.append(f"archived {ref}; no alias pointed at it")
    return lines


def _moved(move: AliasMove, word: str) -> str:
    if move.previous is None:
        return ""
    if move.previous == move.version.version:
        return " (it already was)"
    return f" ({word} version {move.previous})"
