"""The A/B tests equal scipy's and statsmodels' on the same counts, and the verdicts read
as a person would say them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import power as smp
from statsmodels.stats import proportion as smprop
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from modelport.errors import InvalidArgumentError
from modelport.monitoring.arms import ArmStats
from modelport.rollout import statistics as st
from modelport.rollout.results import ResultsOptions, compare_arms

COUNTS = [(450, 1000, 480, 1000), (30, 200, 52, 210), (5, 40, 9, 35), (990, 1000, 985, 1000)]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), COUNTS)
def test_two_proportions_equal_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    result = st.two_proportions(x1, n1, x2, n2, confidence=0.95)
    z, p = smprop.proportions_ztest([x2, x1], [n2, n1])
    low, high = smprop.confint_proportions_2indep(x2, n2, x1, n1, method="wald", compare="diff")
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-12)
    assert result.difference == pytest.approx(x2 / n2 - x1 / n1)


@pytest.mark.parametrize(("p1", "p2"), [(0.45, 0.48), (0.15, 0.25), (0.99, 0.985), (0.5, 0.3)])
@pytest.mark.parametrize(("confidence", "power"), [(0.95, 0.8), (0.99, 0.9)])
def test_proportion_sample_size_equals_statsmodels(
    p1: float, p2: float, confidence: float, power: float
) -> None:
    effect = smprop.proportion_effectsize(p2, p1)
    expected = smp.NormalIndPower().solve_power(
        effect_size=abs(effect), alpha=1 - confidence, power=power, ratio=1.0
    )
    assert st.proportions_sample_size(p1, p2, confidence=confidence, power=power) == math.ceil(
        expected - 1e-9
    )
    assert st.proportions_sample_size(p1, p1) is None


def _samples(seed: int, n1: int, n2: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 3.0, n1), rng.gamma(2.0, 3.0, n2) * 1.3 + shift


@pytest.mark.parametrize(("seed", "n1", "n2", "shift"), [(1, 50, 80, 0.0), (2, 400, 300, 1.5)])
def test_welch_equals_scipy_and_statsmodels(seed: int, n1: int, n2: int, shift: float) -> None:
    a, b = _samples(seed, n1, n2, shift)
    result = st.welch(
        st.Summary(a.mean(), a.std(ddof=1), n1),
        st.Summary(b.mean(), b.std(ddof=1), n2),
        confidence=0.9,
    )
    expected = stats.ttest_ind(b, a, equal_var=False)
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=0.1, usevar="unequal"
    )
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-10)


@pytest.mark.parametrize(("d", "power"), [(0.2, 0.8), (0.5, 0.9), (0.05, 0.8)])
def test_mean_sample_size_equals_statsmodels(d: float, power: float) -> None:
    expected = smp.TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=power, ratio=1.0)
    # a difference of d with both standard deviations 1 is Cohen's d
    assert st.means_sample_size(d, 1.0, 1.0, power=power) == math.ceil(expected - 1e-9)


@pytest.mark.parametrize(("seed", "n1", "n2", "shift"), [(3, 60, 45, 0.0), (4, 500, 700, 0.8)])
def test_mann_whitney_equals_scipy(seed: int, n1: int, n2: int, shift: float) -> None:
    a, b = _samples(seed, n1, n2, shift)
    result = st.mann_whitney(a, b)
    expected = stats.mannwhitneyu(b, a, alternative="two-sided")
    assert result.statistic == expected.statistic
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    differences = np.subtract.outer(b, a).ravel()
    assert result.difference == pytest.approx(np.median(differences))
    # The interval holds about 95% of the pairwise differences' middle, around the shift.
    assert result.ci_low <= result.difference <= result.ci_high
    inside = np.mean((differences >= result.ci_low) & (differences <= result.ci_high))
    assert 0.0 < inside < 0.5


def test_the_hodges_lehmann_interval_covers_a_known_shift() -> None:
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(200):
        a = rng.normal(10, 2, 40)
        b = rng.normal(12, 2, 40)
        result = st.mann_whitney(a, b, confidence=0.9)
        covered += result.ci_low <= 2.0 <= result.ci_high
    assert 0.84 <= covered / 200 <= 0.96


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidArgumentError, match="not proportions"):
        st.two_proportions(5, 4, 1, 2)
    with pytest.raises(InvalidArgumentError, match="two rows per arm"):
        st.welch(st.Summary(1.0, 1.0, 1), st.Summary(2.0, 1.0, 5))
    with pytest.raises(InvalidArgumentError, match="confidence"):
        st.check_levels(1.5, 0.8)
    with pytest.raises(InvalidArgumentError, match="both arms"):
        st.mann_whitney(np.zeros(0), np.ones(3))


def _arm(name: str, version: int, correct: int, labelled: int, requests: int = 20000) -> ArmStats:
    stats_ = ArmStats(name, "churn", version, requests=requests, errors=requests // 100)
    stats_.labelled, stats_.correct, stats_.accuracy = labelled, correct, correct / labelled
    return stats_


def test_a_clear_win_reads_as_one_sentence() -> None:
    champion, canary = _arm("champion", 3, 8000, 10000), _arm("canary", 4, 8210, 10000)
    accuracy = compare_arms(champion, canary, names=("3", "4"))[0]
    assert accuracy.metric == "accuracy"
    assert accuracy.significant
    low, high = accuracy.ci_low, accuracy.ci_high
    assert accuracy.verdict == (
        f"4 is better than 3 on accuracy, +2.1 points, 95% CI [{low:.1f}, {high:.1f}]"
    )
    errors = compare_arms(champion, canary, names=("3", "4"))[1]
    assert errors.metric == "error rate"
    assert errors.verdict.startswith("not enough data yet on error rate")


def test_too_few_rows_is_not_enough_data_with_the_rows_still_needed() -> None:
    champion, canary = _arm("champion", 3, 80, 100, 100), _arm("canary", 4, 84, 100, 100)
    accuracy = compare_arms(champion, canary, ResultsOptions(power=0.8), names=("3", "4"))[0]
    assert not accuracy.significant
    needed = st.proportions_sample_size(0.80, 0.84)
    assert needed is not None
    assert accuracy.more_needed == needed - 100
    assert accuracy.verdict.startswith("not enough data yet on accuracy: 4 vs 3 +4.0 points")
    assert f"about {needed - 100} more per arm for 80% power" in accuracy.verdict
    assert accuracy.to_dict()["verdict"] == accuracy.verdict


def test_latency_verdicts_say_faster_or_slower() -> None:
    rng = np.random.default_rng(6)
    champion, canary = _arm("champion", 3, 1, 2), _arm("canary", 4, 1, 2)
    champion.latencies_ms = rng.normal(10, 1, 500)
    canary.latencies_ms = rng.normal(12, 1, 500)
    champion.latency_p50_ms, canary.latency_p50_ms = 10.0, 12.0
    latency = next(c for c in compare_arms(champion, canary) if c.metric == "latency")
    assert latency.verdict.startswith("canary is slower than champion on latency, +2.0 ms")


def test_no_errors_in_either_arm_is_no_difference() -> None:
    champion, canary = _arm("champion", 3, 80, 100, 1000), _arm("canary", 4, 84, 100, 1000)
    champion.errors = canary.errors = 0
    errors = next(
        c for c in compare_arms(champion, canary, names=("3", "4")) if c.metric == "error rate"
    )
    assert errors.verdict == "no difference on error rate between 4 and 3: both 0.0%"


def test_large_samples_keep_the_pairwise_differences_bounded() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(10, 1, 6000), rng.normal(10.5, 1, 7000)
    result = st.mann_whitney(a, b)
    assert result.p_value == pytest.approx(stats.mannwhitneyu(b, a).pvalue, rel=1e-12)
    assert result.ci_low < result.difference < result.ci_high
    assert 0.4 < result.difference < 0.6  # the true shift is 0.5
