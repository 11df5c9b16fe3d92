"""The drift tests: each compares one reference column with the current data.

P-value tests (``ks``, ``chisquare``, ``z``) report drift when p < threshold; distance
tests (``wasserstein``, ``jensenshannon``, ``psi``) when the distance >= threshold, as
Evidently does. The arithmetic is scipy's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from scipy.spatial import distance

from modelport.errors import InvalidArgumentError
from modelport.monitoring.drift.reference import (
    BinCounts,
    ColumnReference,
    Current,
    binned,
    categorical,
    raw_values,
)

# Empty bins would make PSI and Jensen-Shannon infinite or undefined; like Evidently,
# shares of zero count as 0.0001.
EPSILON = 1e-4
# Evidently's floor for the reference standard deviation that norms Wasserstein.
_MIN_STD = 1e-3


@dataclass(frozen=True)
class MethodResult:
    """One test's outcome: a p-value or a distance, and the verdict."""

    method: str
    score: float
    threshold: float
    drifted: bool
    is_p_value: bool


def ks(ref: ColumnReference, current: Current, threshold: float) -> MethodResult:
    """Two-sample Kolmogorov-Smirnov on the reference sample and raw current values."""
    values = _values(ref, current)
    p = float(scipy_stats.ks_2samp(ref.sample(), values).pvalue)
    return _p_value("ks", p, threshold)


def chisquare(ref: ColumnReference, current: Current, threshold: float) -> MethodResult:
    """Pearson's chi-squared of current counts against the reference frequencies
    (categories, or the reference histogram's bins for a numeric column with many
    distinct values)."""
    pair = categorical(ref, current) if ref.has_value_counts() else binned(ref, current)
    expected, observed = pair
    total = _counted(ref, observed).sum()
    expected = expected / expected.sum() * total
    if np.any((expected == 0) & (observed > 0)):
        return _p_value("chisquare", 0.0, threshold)  # a value the reference never had
    keep = expected > 0
    p = float(scipy_stats.chisquare(observed[keep], expected[keep]).pvalue)
    return _p_value("chisquare", p, threshold)


def z(ref: ColumnReference, current: Current, threshold: float) -> MethodResult:
    """Two-proportion Z-test for a binary column (the share of its first value)."""
    expected, observed = categorical(ref, current)
    n1, n2 = expected.sum(), _counted(ref, observed).sum()
    p1, p2 = expected[0] / n1, observed[0] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        p = 1.0 if p1 == p2 else 0.0
    else:
        p = float(2 * scipy_stats.norm.sf(abs(p1 - p2) / spread))
    return _p_value("z", p, threshold)


def wasserstein(ref: ColumnReference, current: Current, threshold: float) -> MethodResult:
    """Wasserstein distance divided by the reference standard deviation. Raw values
    are compared with the reference sample; bin counts with the reference histogram,
    each bin at its midpoint (an approximation)."""
    norm = max(ref.std, _MIN_STD)
    if not isinstance(current, BinCounts):
        values = _values(ref, current)
        score = scipy_stats.wasserstein_distance(ref.sample(), values)
    else:
        expected, observed = binned(ref, current)
        edges = np.asarray(ref.summary["histogram"]["edges"], dtype="float64")
        mids = (edges[:-1] + edges[1:]) / 2 if edges.size > 1 else edges
        score = scipy_stats.wasserstein_distance(mids, mids, expected, _counted(ref, observed))
    return _distance("wasserstein", float(score) / norm, threshold)


def jensenshannon(ref: ColumnReference, current: Current, threshold: float) -> MethodResult:
    """Jensen-Shannon distance (natural log) between the two distributions."""
    expected, observed = _shares(ref, current)
    return _distance("jensenshannon", float(distance.jensenshannon(expected, observed)), threshold)


def psi(ref: ColumnReference, current: Current, threshold: float) -> MethodResult:
    """Population stability index: sum of (current - reference) * ln(current / reference)."""
    expected, observed = _shares(ref, current)
    return _distance(
        "psi", float(np.sum((observed - expected) * np.log(observed / expected))), threshold
    )


def _shares(ref: ColumnReference, current: Current) -> tuple[np.ndarray, np.ndarray]:
    # A numeric column with few distinct values (value counts stored) is compared value
    # by value: its quantile bins can merge into one (a 0/1 column), which would hide
    # any drift, and Evidently's 30 equal-width bins also separate such values.
    pair = categorical(ref, current) if ref.has_value_counts() else binned(ref, current)
    expected, observed = pair
    _counted(ref, observed)
    keep = (expected > 0) | (observed > 0)  # a bucket empty on both sides says nothing
    expected, observed = expected[keep], observed[keep]
    return _floor(expected / expected.sum()), _floor(observed / observed.sum())


def _floor(shares: np.ndarray) -> np.ndarray:
    return np.where(shares == 0, EPSILON, shares)


def _values(ref: ColumnReference, current: Current) -> np.ndarray:
    values = raw_values(ref, current)
    if values.size == 0:
        raise InvalidArgumentError(f"column {ref.name!r}: no current values to compare")
    return values


def _counted(ref: ColumnReference, counts: np.ndarray) -> np.ndarray:
    if counts.sum() <= 0:
        raise InvalidArgumentError(f"column {ref.name!r}: no current values to compare")
    return counts


def _p_value(method: str, p: float, threshold: float) -> MethodResult:
    return MethodResult(method, p, threshold, p < threshold, is_p_value=True)


def _distance(method: str, score: float, threshold: float) -> MethodResult:
    return MethodResult(method, score, threshold, score >= threshold, is_p_value=False)


Method = Callable[[ColumnReference, Current, float], MethodResult]
METHODS: dict[str, Method] = {
    "ks": ks,
    "chisquare": chisquare,
    "z": z,
    "wasserstein": wasserstein,
    "jensenshannon": jensenshannon,
    "psi": psi,
}
