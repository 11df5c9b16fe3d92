"""The reference side of a column, and the current side brought onto the same bins.

A reference column is one column summary of ``package.stats`` (version 2). The current
side is raw values, ``BinCounts`` over the reference histogram's bins, or
``CategoryCounts`` keyed like the reference's categories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelport.errors import InvalidArgumentError, MissingStatisticsError
from modelport.package.stats import STATS_VERSION, value_key

OTHER = "<other>"  # the bucket of categories the reference does not list
_RECOMPUTE = (
    "compute version-{version} statistics from the training data with "
    "modelport version stats NAME/VERSION --sample FILE (or register the model with --sample)"
)


@dataclass(frozen=True)
class BinCounts:
    """Current counts over the reference histogram's bins, in order."""

    counts: Sequence[int]


@dataclass(frozen=True)
class CategoryCounts:
    """Current counts per category (numeric columns: per ``value_key`` of a value);
    categories the reference does not list go to its ``<other>`` bucket."""

    counts: Mapping[str, int]


Current = BinCounts | CategoryCounts | Any  # anything else is raw values


@dataclass(frozen=True)
class ColumnReference:
    """What the drift tests read of one reference column."""

    name: str
    summary: Mapping[str, Any]

    @property
    def is_numeric(self) -> bool:
        """Numeric or datetime (datetimes are compared as epoch seconds)."""
        return self.summary.get("kind") in ("numeric", "datetime")

    @property
    def unique(self) -> int:
        """The number of distinct non-missing values."""
        key = "unique" if self.is_numeric else "distinct"
        return int(self._field(key))

    @property
    def rows(self) -> int:
        """The number of non-missing reference values."""
        count = int(self.summary.get("count", 0))
        return round(count * (1.0 - float(self.summary.get("missing_rate", 0.0))))

    @property
    def std(self) -> float:
        return float(self._field("std"))

    def sample(self) -> np.ndarray:
        """The stored random sample of raw reference values (numeric only)."""
        return np.asarray(self._field("sample"), dtype="float64")

    def bins(self) -> np.ndarray:
        """Reference counts per histogram bin."""
        return np.asarray(self._field("histogram")["counts"], dtype="float64")

    def categories(self) -> dict[str, float]:
        """Reference counts per category, with ``<other>`` for the rest."""
        if self.is_numeric:
            return {k: float(n) for k, n in self._field("value_counts").items()}
        count = int(self.summary["count"])
        result = {k: rate * count for k, rate in self._field("top").items()}
        result[OTHER] = float(self.summary.get("other_rate", 0.0)) * count
        return result

    def has_value_counts(self) -> bool:
        return not self.is_numeric or "value_counts" in self.summary

    def _field(self, key: str) -> Any:
        if key not in self.summary:
            raise MissingStatisticsError(
                f"the reference statistics of column {self.name!r} have no {key!r}; "
                + _RECOMPUTE.format(version=STATS_VERSION)
            )
        return self.summary[key]


def check_version(stats: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The statistics, refused when absent or older than the drift tests need."""
    if stats is None:
        raise MissingStatisticsError(
            "the package has no reference statistics; " + _RECOMPUTE.format(version=STATS_VERSION)
        )
    version = int(stats.get("stats_version", 0))
    if version < 2:
        raise MissingStatisticsError(
            f"the package's reference statistics are version {version}, which lack the "
            "samples and distinct-value counts the drift tests need; "
            + _RECOMPUTE.format(version=STATS_VERSION)
        )
    return stats


def raw_values(ref: ColumnReference, current: Current) -> np.ndarray:
    """Current raw numeric values without missing ones."""
    if isinstance(current, BinCounts | CategoryCounts):
        raise InvalidArgumentError(
            f"column {ref.name!r}: this test needs raw values, got counts; "
            "pass the column's values (a numpy array or pandas Series)"
        )
    series = pd.Series(np.asarray(current).ravel())
    data: np.ndarray
    if ref.summary.get("kind") == "datetime":
        present = series.dropna()
        data = pd.to_datetime(present).astype("int64").to_numpy(dtype="float64") / 1e9
    else:
        data = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    finite: np.ndarray = data[np.isfinite(data)]
    return finite


def binned(ref: ColumnReference, current: Current) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over the reference histogram's bins."""
    expected = ref.bins()
    if isinstance(current, BinCounts):
        observed = np.asarray(current.counts, dtype="float64")
        if observed.shape != expected.shape:
            raise InvalidArgumentError(
                f"column {ref.name!r}: {observed.size} bin counts given, "
                f"the reference has {expected.size} bins"
            )
        return expected, observed
    edges = np.asarray(ref.summary["histogram"]["edges"], dtype="float64")
    values = raw_values(ref, current)
    # Values beyond the reference range count in the outer bins, as np.histogram's
    # last bin already holds its right edge.
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, expected.size - 1)
    return expected, np.bincount(index, minlength=expected.size).astype("float64")


def categorical(ref: ColumnReference, current: Current) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over the reference's categories and ``<other>``."""
    expected = ref.categories()
    if isinstance(current, BinCounts):
        raise InvalidArgumentError(
            f"column {ref.name!r}: this test compares categories; pass CategoryCounts or values"
        )
    counts = current.counts if isinstance(current, CategoryCounts) else _count(ref, current)
    observed = dict.fromkeys(expected, 0.0)
    for key, n in counts.items():
        bucket = key if key in expected else OTHER
        observed[bucket] = observed.get(bucket, 0.0) + float(n)
    keys = list(observed)
    return (
        np.array([expected.get(k, 0.0) for k in keys]),
        np.array([observed[k] for k in keys]),
    )


def _count(ref: ColumnReference, values: Any) -> dict[str, int]:
    if ref.is_numeric:
        keys = [value_key(v) for v in raw_values(ref, values)]
    else:
        present = pd.Series(np.asarray(values, dtype=object).ravel()).dropna()
        keys = present.astype(str).tolist()
    return {str(k): int(n) for k, n in pd.Series(keys, dtype=object).value_counts().items()}
