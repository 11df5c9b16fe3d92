"""Printing for the CLI: readable tables for people, ``--json`` for scripts.

Under ``--json`` a command prints one JSON document on stdout; its errors are one JSON
object on stderr, ``{"error": MESSAGE, "code": CODE, ...}`` (``error_document``), and
modelport's warnings ``{"warning": MESSAGE, "category": CLASS}``, one line each.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from modelport.errors import ModelportWarning

if TYPE_CHECKING:
    from modelport.package.manifest import AccelerationSection


@contextmanager
def warnings_on_stderr(*, as_json: bool = False) -> Iterator[None]:
    """Print modelport's warnings raised inside the block as ``warning: ...`` lines on
    stderr, or JSON lines under ``--json`` (other warnings are shown as Python shows
    them)."""
    recorded: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ModelportWarning)
            recorded = caught
            yield
    finally:  # outside the block: showwarning is Python's own again
        for warning in recorded:
            if issubclass(warning.category, ModelportWarning) and as_json:
                document = {"warning": str(warning.message), "category": warning.category.__name__}
                click.echo(json.dumps(document), err=True)
            elif issubclass(warning.category, ModelportWarning):
                click.echo(f"warning: {warning.message}", err=True)
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )


def error_document(message: str, code: str, **fields: Any) -> dict[str, Any]:
    """An error as ``--json`` prints it: ``{"error": message, "code": code}`` and the
    structured fields that are set (``model``, ``version``, ``field``, ...)."""
    return {"error": message, "code": code, **{k: v for k, v in fields.items() if v is not None}}


def print_error(message: str, code: str, *, as_json: bool, **fields: Any) -> None:
    """Print an error on stderr: ``error: message``, or one JSON line under ``--json``."""
    if as_json:
        click.echo(json.dumps(error_document(message, code, **fields), default=str), err=True)
    else:
        click.echo(f"error: {message}", err=True)


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


def acceleration_text(section: AccelerationSection | None) -> str:
    """How a version is served, and why not accelerated when it is not."""
    if section is None:
        return (
            "the native model; no ONNX conversion was tried (registered with "
            "--no-accelerate, or its flavor has none)"
        )
    return section.describe()


def acceleration_data(section: AccelerationSection | None) -> dict[str, Any] | None:
    """The acceleration outcome for ``--json`` (``None`` when none was tried)."""
    return section.outcome() if section is not None else None
