"""Parsing command-line values: ``key=value`` pairs, model references, sample files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelport.domain.refs import ModelRef
from modelport.errors import InvalidArgumentError, InvalidReferenceError, MissingDependencyError
from modelport.package.location import locate_model

# How pandas names a column whose header is empty: "Unnamed: 0" for the first.
_UNNAMED = "Unnamed: "


def _note(message: str, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"note": message}), err=True)
    else:
        click.echo(f"note: {message}", err=True)


def parse_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a usage error."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key] = rest
    return pairs


def parse_metrics(values: tuple[str, ...]) -> dict[str, float]:
    """``--metric auc=0.93`` pairs as numbers."""
    metrics = {}
    for key, raw in parse_pairs(values, "--metric").items():
        try:
            metrics[key] = float(raw)
        except ValueError:
            raise click.BadParameter(
                f"metric {key!r} must be a number, got {raw!r}", param_hint="--metric"
            ) from None
    return metrics


def version_ref(text: str) -> ModelRef:
    """A registry reference naming one version: ``churn/3``, ``churn@production``, ``churn``
    (its latest version), by the rule ``modelport.load`` and ``modelport serve`` follow;
    a package directory is refused, since these commands act on the registry."""
    found = locate_model(text)
    if isinstance(found, Path):
        name = text if "/" not in text and "@" not in text else "NAME"
        raise InvalidArgumentError(
            f"{text!r} is a package directory, not a registered version; to name one in the "
            f"registry write models:/{name}/VERSION, models:/{name}@ALIAS or models:/{name} "
            "(models:/ always means the registry)",
            field="model",
        )
    return found


def numbered_ref(text: str) -> tuple[str, int]:
    """A reference with an explicit version number, for commands that change one version."""
    ref = version_ref(text)
    if ref.version is None:
        raise InvalidReferenceError(
            f"{text!r} does not name a version number; use NAME/VERSION, e.g. churn/3"
        )
    return ref.name, ref.version


def read_sample(path: Path, *, as_json: bool = False) -> Any:
    """Read a sample input file: ``.csv``, ``.parquet``, ``.json`` (records) or ``.npy``.

    A CSV file whose first column has no name holds the row index pandas' ``to_csv``
    writes by default: it is left out (it is no feature), and a note on stderr says so.
    """
    import numpy as np
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidArgumentError(f"no such sample file: {path}", field="sample")
    if suffix == ".csv":
        frame = pd.read_csv(path)
        if len(frame.columns) > 1 and str(frame.columns[0]).startswith(_UNNAMED):
            _note(
                f"the first column of {path.name} has no name: it is the row index pandas "
                "writes by default, so it is left out of the sample (write the file with "
                "to_csv(..., index=False) to leave it out yourself)",
                as_json=as_json,
            )
            frame = frame.drop(columns=frame.columns[0])
        return frame
    if suffix == ".json":
        return pd.read_json(path, orient="records")
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise MissingDependencyError(
                "reading Parquet needs pyarrow; install it with: pip install pyarrow",
                package="pyarrow",
                extra="all",
            ) from None
    raise InvalidArgumentError(
        f"cannot read a sample from {path.name}: use .csv, .parquet, .json (records) or .npy",
        field="sample",
    )
