"""The drift tests agree with scipy on the same data (tolerances where binning or the
reference sample makes a test approximate are stated per test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance

from modelport.errors import InvalidArgumentError
from modelport.monitoring.drift import methods
from modelport.monitoring.drift.reference import BinCounts, CategoryCounts, ColumnReference
from modelport.package.stats import SAMPLE_SIZE, categorical_summary, numeric_summary


def _numeric(values: np.ndarray) -> ColumnReference:
    return ColumnReference("x", numeric_summary(values))


def _categorical(values: np.ndarray) -> ColumnReference:
    return ColumnReference("c", categorical_summary(values))


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_ks_is_exact_when_the_reference_fits_the_sample(shift: float) -> None:
    rng = np.random.default_rng(101)
    reference = rng.normal(size=900)
    current = rng.normal(loc=shift, size=400)
    result = methods.ks(_numeric(reference), current, 0.05)
    expected = scipy_stats.ks_2samp(reference, current).pvalue
    assert result.score == pytest.approx(expected, rel=1e-9)
    assert result.drifted == (expected < 0.05)


def test_ks_on_the_reservoir_sample_stays_near_the_full_data_statistic() -> None:
    rng = np.random.default_rng(102)
    # A reference larger than the sample: the KS statistic of the sample differs from
    # the full data's by at most ~1.36/sqrt(SAMPLE_SIZE) (its 95% bound); we allow 0.035.
    reference = rng.normal(size=50_000)
    current = rng.normal(loc=0.2, size=2000)
    sample = ColumnReference("x", numeric_summary(reference)).sample()
    assert sample.size == SAMPLE_SIZE
    full = scipy_stats.ks_2samp(reference, current).statistic
    sampled = scipy_stats.ks_2samp(sample, current).statistic
    assert abs(full - sampled) < 0.035
    assert methods.ks(_numeric(reference), current, 0.05).drifted


def test_the_sample_is_the_same_for_the_same_data() -> None:
    rng = np.random.default_rng(103)
    reference = rng.normal(size=10_000)
    assert numeric_summary(reference)["sample"] == numeric_summary(reference)["sample"]


def test_chisquare_on_categories_matches_scipy() -> None:
    rng = np.random.default_rng(104)
    reference = rng.choice(list("abcd"), p=[0.4, 0.3, 0.2, 0.1], size=3000)
    current = rng.choice(list("abcd"), p=[0.35, 0.3, 0.2, 0.15], size=1000)
    result = methods.chisquare(_categorical(reference), current, 0.05)
    ref_counts = pd.Series(reference).value_counts().sort_index()
    cur_counts = pd.Series(current).value_counts().sort_index()
    expected = ref_counts / ref_counts.sum() * cur_counts.sum()
    assert result.score == pytest.approx(scipy_stats.chisquare(cur_counts, expected).pvalue)
    assert result.drifted


def test_chisquare_takes_category_counts_like_values() -> None:
    rng = np.random.default_rng(105)
    reference = _categorical(rng.choice(list("abc"), size=500))
    current = rng.choice(list("abc"), size=300)
    counts = {str(k): int(v) for k, v in pd.Series(current).value_counts().items()}
    by_values = methods.chisquare(reference, current, 0.05)
    by_counts = methods.chisquare(reference, CategoryCounts(counts), 0.05)
    assert by_counts == by_values


def test_a_category_the_reference_never_had_is_drift() -> None:
    reference = _categorical(np.array(["a", "b"] * 50))
    result = methods.chisquare(reference, np.array(["a", "b", "z"] * 10), 0.05)
    assert result.score == 0.0 and result.drifted


def test_chisquare_on_few_numeric_values_uses_their_counts() -> None:
    rng = np.random.default_rng(106)
    reference = rng.integers(0, 4, size=800).astype(float)
    current = rng.integers(0, 4, size=300).astype(float)
    result = methods.chisquare(_numeric(reference), current, 0.05)
    ref = np.bincount(reference.astype(int))
    cur = np.bincount(current.astype(int), minlength=4)
    assert result.score == pytest.approx(
        scipy_stats.chisquare(cur, ref / ref.sum() * cur.sum()).pvalue
    )


def test_jensenshannon_on_categories_matches_scipy() -> None:
    rng = np.random.default_rng(107)
    reference = rng.choice(list("abc"), p=[0.5, 0.3, 0.2], size=2000)
    current = rng.choice(list("abc"), p=[0.2, 0.3, 0.5], size=1000)
    result = methods.jensenshannon(_categorical(reference), current, 0.1)
    p = pd.Series(reference).value_counts(normalize=True).sort_index()
    q = pd.Series(current).value_counts(normalize=True).sort_index()
    assert result.score == pytest.approx(distance.jensenshannon(p, q))
    assert result.drifted


def test_jensenshannon_on_numeric_uses_the_reference_bins() -> None:
    rng = np.random.default_rng(108)
    reference = rng.normal(size=5000)
    current = rng.normal(size=5000)
    ref = _numeric(reference)
    edges = np.asarray(ref.summary["histogram"]["edges"])
    p = np.histogram(reference, edges)[0]
    q = np.histogram(np.clip(current, edges[0], edges[-1]), edges)[0]
    result = methods.jensenshannon(ref, current, 0.1)
    assert result.score == pytest.approx(distance.jensenshannon(p / p.sum(), q / q.sum()))
    assert not result.drifted


def test_wasserstein_is_normed_by_the_reference_std() -> None:
    rng = np.random.default_rng(109)
    # Below SAMPLE_SIZE the reference sample is the whole column: exact.
    reference = rng.normal(scale=3.0, size=1500)
    current = rng.normal(loc=1.0, scale=3.0, size=800)
    result = methods.wasserstein(_numeric(reference), current, 0.1)
    expected = scipy_stats.wasserstein_distance(reference, current) / reference.std(ddof=1)
    assert result.score == pytest.approx(expected)
    assert result.drifted


def test_wasserstein_from_bin_counts_approximates_the_raw_distance() -> None:
    rng = np.random.default_rng(110)
    # Each bin stands at its midpoint: the outer quantile bins are wide, so this
    # overestimates (0.06-0.12 above the raw normed distance over seeds, for a 0.5 sd shift).
    reference = rng.normal(size=1500)
    current = rng.normal(loc=0.5, size=1500)
    ref = _numeric(reference)
    edges = np.asarray(ref.summary["histogram"]["edges"])
    counts = np.histogram(np.clip(current, edges[0], edges[-1]), edges)[0]
    binned = methods.wasserstein(ref, BinCounts(counts.tolist()), 0.1).score
    raw = methods.wasserstein(ref, current, 0.1).score
    assert raw < binned <= raw + 0.15


def test_psi_follows_its_formula_with_epsilon_for_empty_bins() -> None:
    rng = np.random.default_rng(111)
    reference = rng.normal(size=4000)
    ref = _numeric(reference)
    counts = np.array([0, 50, 100, 100, 100, 100, 100, 100, 100, 250])
    result = methods.psi(ref, BinCounts(counts.tolist()), 0.1)
    expected_shares = np.asarray(ref.summary["histogram"]["counts"]) / 4000
    shares = np.where(counts == 0, methods.EPSILON, counts / counts.sum())
    assert result.score == pytest.approx(
        np.sum((shares - expected_shares) * np.log(shares / expected_shares))
    )
    assert result.drifted


def test_z_test_matches_the_two_proportion_formula() -> None:
    rng = np.random.default_rng(112)
    reference = rng.choice([True, False], p=[0.3, 0.7], size=1000)
    current = rng.choice([True, False], p=[0.4, 0.6], size=500)
    result = methods.z(_categorical(reference), current, 0.05)
    p1, p2 = 1 - reference.mean(), 1 - current.mean()  # the first category is "False"
    pooled = (p1 * 1000 + p2 * 500) / 1500
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 500))
    assert result.score == pytest.approx(2 * scipy_stats.norm.sf(abs(z)))
    assert result.drifted


def test_tests_that_need_raw_values_refuse_counts() -> None:
    rng = np.random.default_rng(113)
    ref = _numeric(rng.normal(size=100))
    with pytest.raises(InvalidArgumentError, match="needs raw values"):
        methods.ks(ref, BinCounts([10] * 10), 0.05)


def test_bin_counts_must_match_the_reference_bins() -> None:
    rng = np.random.default_rng(114)
    ref = _numeric(rng.normal(size=100))
    with pytest.raises(InvalidArgumentError, match="3 bin counts given, the reference has 10"):
        methods.psi(ref, BinCounts([1, 2, 3]), 0.1)


def test_no_current_values_is_a_clear_error() -> None:
    rng = np.random.default_rng(115)
    ref = _numeric(rng.normal(size=100))
    with pytest.raises(InvalidArgumentError, match="no current values"):
        methods.ks(ref, np.array([np.nan]), 0.05)
