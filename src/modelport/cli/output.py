"""Printing for the CLI: readable tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from modelport.errors import ModelportWarning


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Print modelport's warnings raised inside the block as ``warning: ...`` lines on
    stderr (other warnings are shown as Python shows them)."""
    recorded: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ModelportWarning)
            recorded = caught
            yield
    finally:  # outside the block: showwarning is Python's own again
        for warning in recorded:
            if issubclass(warning.category, ModelportWarning):
                click.echo(f"warning: {warning.message}", err=True)
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table with a header row (rich, imported only when a table is printed)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    Console(soft_wrap=True).print(table)


def print_fields(fields: Iterable[tuple[str, Any]]) -> None:
    """Print ``name: value`` lines, skipping empty values."""
    for name, value in fields:
        if value not in (None, "", {}, []):
            click.echo(f"{name + ':':<14}{format_value(value)}")


def format_value(value: Any) -> str:
    """A compact one-line rendering of dicts and lists."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def short_time(value: Any) -> str:
    """An ISO timestamp cut to the second."""
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
