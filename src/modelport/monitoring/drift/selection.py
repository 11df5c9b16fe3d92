"""Which test and threshold each column gets: Evidently's default rule, or the
column's own setting.

Evidently's rule: a reference of at most 1,000 rows gets Kolmogorov-Smirnov for a
numeric column with more than 5 distinct values, chi-squared for a categorical column
or a numeric one with 3 to 5, and the Z-test for a binary column, with drift at
p < 0.05; a larger reference gets the normed Wasserstein distance for a numeric
column with more than 5 distinct values and Jensen-Shannon otherwise, with drift at
a distance >= 0.1. Evidently counts distinct values over reference and current
together; here the reference's count decides, since the current side may be counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelport.errors import InvalidArgumentError
from modelport.monitoring.drift.methods import METHODS
from modelport.monitoring.drift.reference import ColumnReference

SMALL_REFERENCE_ROWS = 1000
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
_P_VALUE_METHODS = ("ks", "chisquare", "z")


@dataclass(frozen=True)
class ColumnOptions:
    """A column's own test and threshold; None keeps the default."""

    method: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise InvalidArgumentError(
                f"unknown drift method {self.method!r}; accepted: {', '.join(METHODS)}"
            )
        if self.threshold is not None and not self.threshold >= 0:  # NaN too
            raise InvalidArgumentError(f"drift threshold must be >= 0, got {self.threshold}")


def default_method(ref: ColumnReference, reference_rows: int) -> str:
    """Evidently's default test for a column."""
    unique = ref.unique
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if unique <= 2:
            return "z"
        if ref.is_numeric and unique > 5:
            return "ks"
        return "chisquare"
    if ref.is_numeric and unique > 5:
        return "wasserstein"
    return "jensenshannon"


def default_threshold(method: str) -> float:
    """0.05 for p-value tests, 0.1 for distances."""
    return P_VALUE_THRESHOLD if method in _P_VALUE_METHODS else DISTANCE_THRESHOLD


def choose(
    ref: ColumnReference, reference_rows: int, options: ColumnOptions | None = None
) -> tuple[str, float]:
    """The method and threshold for a column, its options first."""
    options = options or ColumnOptions()
    method = options.method or default_method(ref, reference_rows)
    threshold = options.threshold if options.threshold is not None else default_threshold(method)
    return method, threshold


def check_options(options: Mapping[str, ColumnOptions], columns: Mapping[str, object]) -> None:
    """Options for columns that do not exist are a mistake, not a no-op."""
    unknown = sorted(set(options) - set(columns))
    if unknown:
        raise InvalidArgumentError(
            f"drift options name unknown columns {unknown}; known: {sorted(columns)}"
        )


def parse_options(
    methods: Mapping[str, str], thresholds: Mapping[str, str]
) -> dict[str, ColumnOptions]:
    """Per-column options from text (``--method age=psi``, ``?threshold.age=0.2``)."""
    options: dict[str, ColumnOptions] = {}
    for column in {*methods, *thresholds}:
        raw = thresholds.get(column)
        try:
            threshold = float(raw) if raw is not None else None
        except ValueError:
            raise InvalidArgumentError(
                f"the drift threshold of column {column!r} must be a number, got {raw!r}",
                field=f"threshold.{column}",
            ) from None
        options[column] = ColumnOptions(methods.get(column), threshold)
    return options
