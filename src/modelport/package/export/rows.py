"""The rows an exported graph is checked on: the package's input example and rows drawn
from its reference statistics.

The sample a package was written from is not stored, only its first rows (the input
example) and per-feature statistics. Those statistics keep, for each numeric feature, a
bounded uniform sample of its raw values (or at least a histogram) and, for each
categorical feature, the frequencies of its top values. Drawing each feature on its own
from these gives rows from the product of the marginal distributions: every feature
covers its training range (which the five example rows do not), though correlations
between features are lost. That is what a check of a graph's arithmetic needs: it
compares the graph with the native model on the same rows, whatever the rows are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema
from modelport.package.batch_validation import validate_batch

REFERENCE_ROWS = 256
_SEED = 0


@dataclass(frozen=True)
class CheckRows:
    """The rows to check on (a batch in the signature's form), how many came from the
    input example and from the reference statistics, and why none were drawn from the
    statistics when so."""

    batch: Any
    example_rows: int
    reference_rows: int
    note: str | None = None


def check_rows(
    example: Any, stats: dict[str, Any] | None, signature: Signature, count: int = REFERENCE_ROWS
) -> CheckRows:
    """The input example followed by ``count`` rows drawn from ``stats``; the example
    alone (with the reason in ``note``) when the statistics cannot give rows."""
    example_rows = 0 if example is None else _length(example)
    note: str | None
    try:
        drawn = _drawn(stats, signature, count)
    except (KeyError, ValueError, TypeError) as exc:
        drawn, note = None, f"no rows drawn from the reference statistics: {exc}"
    else:
        note = None if drawn is not None else "the package has no reference statistics"
    if drawn is None:
        return CheckRows(example, example_rows, 0, note)
    batch = drawn if example is None else _concat(example, drawn)
    return CheckRows(batch, example_rows, count)


def _drawn(stats: dict[str, Any] | None, signature: Signature, count: int) -> Any:
    if not stats or not stats.get("features"):
        return None
    features: dict[str, Any] = stats["features"]
    rng = np.random.default_rng(_SEED)
    schema = signature.inputs
    if isinstance(schema, ColumnSchema):
        frame = pd.DataFrame(
            {c.name: _column(features[c.name], c, rng, count) for c in schema.columns}
        )
        return validate_batch(schema, frame)
    return validate_batch(schema, _tensors(schema, features, rng, count))


def _column(summary: dict[str, Any], spec: ColumnSpec, rng: np.random.Generator, count: int) -> Any:
    if summary.get("kind") == "categorical":
        values = _categories(summary, rng, count)
        if spec.dtype == "bool":
            return np.array([value == "True" for value in values], dtype=bool)
        return values
    values = _numbers(summary, rng, count)
    if spec.dtype == "datetime":
        return pd.to_datetime(values, unit="s")
    missing = float(summary.get("missing_rate") or 0.0)
    if spec.nullable and missing > 0:
        values[rng.random(count) < missing] = np.nan
    if np.dtype(spec.dtype).kind in "iu" and not spec.nullable:
        return np.round(values).astype(spec.dtype)
    return values


def _numbers(summary: dict[str, Any], rng: np.random.Generator, count: int) -> np.ndarray:
    """Values drawn from the stored raw sample, else from the histogram (a bin by its
    count, a value uniformly inside it), else uniformly between min and max."""
    sample = summary.get("sample")
    if sample:
        return rng.choice(np.asarray(sample, dtype=np.float64), size=count)
    histogram = summary.get("histogram")
    if histogram and len(histogram["edges"]) > 1:
        edges = np.asarray(histogram["edges"], dtype=np.float64)
        weights = np.asarray(histogram["counts"], dtype=np.float64)
        bins = rng.choice(len(weights), size=count, p=weights / weights.sum())
        drawn: np.ndarray = rng.uniform(edges[bins], edges[bins + 1])
        return drawn
    if "min" in summary:
        return np.asarray(rng.uniform(summary["min"], summary["max"], size=count))
    raise ValueError("a numeric feature has no values (all missing)")


def _categories(summary: dict[str, Any], rng: np.random.Generator, count: int) -> np.ndarray:
    top: dict[str, float] = summary.get("top") or {}
    if not top:
        raise ValueError("a categorical feature has no values (all missing)")
    weights = np.asarray(list(top.values()), dtype=np.float64)
    choices = np.array(list(top), dtype=object)
    return np.asarray(choices[rng.choice(len(choices), size=count, p=weights / weights.sum())])


def _tensors(
    schema: TensorSchema, features: dict[str, Any], rng: np.random.Generator, count: int
) -> Any:
    arrays: dict[str, np.ndarray] = {}
    for spec in schema.tensors:
        dtype = np.dtype(object if spec.dtype == "string" else spec.dtype)
        if dtype.kind not in "iuf" or len(spec.shape) > 2:
            raise ValueError(f"tensor {spec.name!r} is not a 1-D or 2-D numeric tensor")
        if len(spec.shape) == 1:
            values = _numbers(features[spec.name], rng, count)
        else:
            width = spec.shape[1]
            columns = [_numbers(features[f"{spec.name}[{j}]"], rng, count) for j in range(width)]
            values = np.column_stack(columns)
        arrays[spec.name] = (np.round(values) if dtype.kind in "iu" else values).astype(dtype)
    return arrays if len(arrays) > 1 else next(iter(arrays.values()))


def _length(batch: Any) -> int:
    if isinstance(batch, dict):
        return len(next(iter(batch.values())))
    return len(batch)


def _concat(first: Any, second: Any) -> Any:
    if isinstance(first, pd.DataFrame):
        return pd.concat([first, second], ignore_index=True)
    if isinstance(first, dict):
        return {name: np.concatenate([first[name], second[name]]) for name in first}
    return np.concatenate([first, second])
