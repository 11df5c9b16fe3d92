"""A drift report: one test per column and the share of drifted columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from modelport.errors import InvalidArgumentError
from modelport.monitoring.drift.methods import METHODS
from modelport.monitoring.drift.reference import ColumnReference, Current, check_version
from modelport.monitoring.drift.selection import ColumnOptions, check_options, choose

DRIFT_SHARE = 0.5  # Evidently's: the dataset drifts when half its columns do


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: which, its score (p-value or distance), and the verdict."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """Per-column results and whether the dataset as a whole drifted."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float

    @property
    def drifted_columns(self) -> int:
        return sum(c.drifted for c in self.columns)

    @property
    def share_drifted(self) -> float:
        return self.drifted_columns / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.share_drifted >= self.drift_share


def reference_columns(stats: Mapping[str, Any] | None) -> dict[str, ColumnReference]:
    """The columns of a package's statistics: its features, then ``prediction`` (or
    ``prediction.NAME`` for several outputs) and ``probability.CLASS``."""
    stats = check_version(stats)
    summaries: dict[str, Any] = dict(stats.get("features", {}))
    predictions = stats.get("predictions") or {}
    outputs = predictions.get("outputs")
    if isinstance(outputs, dict) and "kind" in outputs:
        summaries["prediction"] = outputs
    elif isinstance(outputs, dict):
        summaries.update({f"prediction.{k}": v for k, v in outputs.items()})
    for name, summary in (predictions.get("probabilities") or {}).items():
        summaries[f"probability.{name}"] = summary
    return {name: ColumnReference(name, summary) for name, summary in summaries.items()}


def drift_report(
    stats: Mapping[str, Any] | None,
    current: pd.DataFrame | Mapping[str, Current],
    *,
    options: Mapping[str, ColumnOptions] | None = None,
    drift_share: float = DRIFT_SHARE,
) -> DriftReport:
    """Compare the current columns with the reference; columns absent from ``current``
    are not tested. ``current`` maps column names to raw values, ``BinCounts`` or
    ``CategoryCounts`` (a DataFrame gives raw values)."""
    stats = check_version(stats)
    references = reference_columns(stats)
    options = options or {}
    check_options(options, references)
    data = {str(k): current[k] for k in current}
    unknown = sorted(set(data) - set(references))
    if unknown:
        raise InvalidArgumentError(
            f"current data has columns the reference does not: {unknown}; "
            f"known: {sorted(references)}"
        )
    rows = int(stats.get("rows", 0))
    results = tuple(
        column_drift(references[name], values, rows, options.get(name))
        for name, values in data.items()
    )
    return DriftReport(results, drift_share)


def column_drift(
    ref: ColumnReference, values: Current, rows: int, options: ColumnOptions | None
) -> ColumnDrift:
    """One column's test: its options' method and threshold, or the default for a
    reference of ``rows`` rows."""
    method, threshold = choose(ref, rows or ref.rows, options)
    result = METHODS[method](ref, values, threshold)
    return ColumnDrift(ref.name, method, result.score, threshold, result.drifted)
