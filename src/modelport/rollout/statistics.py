"""Is one arm really better than another? Tests, intervals, sample sizes and a verdict.

Three tests, each the standard one for its kind of number:

- rates (accuracy, error rate): the two-proportion z-test with the pooled variance
  (statsmodels' ``proportions_ztest``) and the Wald interval of the difference
  (``confint_proportions_2indep(method="wald")``); the sample size for a chosen power
  from Cohen's h (``NormalIndPower`` over ``proportion_effectsize``);
- means (a logged score or business metric): Welch's t-test (``scipy.stats.
  ttest_ind_from_stats(equal_var=False)``) with the Welch-Satterthwaite interval; the
  sample size from Cohen's d (``TTestIndPower``);
- latencies: the Mann-Whitney U test (``scipy.stats.mannwhitneyu``), the Hodges-Lehmann
  shift (median of the pairwise differences) and its distribution-free interval; the
  sample size is the t-test's divided by the U test's efficiency (3/pi).

Every difference is candidate minus baseline. A ``Comparison`` ends in a plain verdict:
"4 is better than 3 on accuracy, +2.1 points, 95% CI [0.8, 3.4]" when the interval
excludes zero, "not enough data yet" while it does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy import optimize, stats

from modelport.errors import InvalidArgumentError

Direction = Literal["higher", "lower", "neutral"]  # which way is better
_MAX_N = 1e9  # beyond this many rows per arm the effect is not worth detecting


@dataclass(frozen=True)
class Comparison:
    """One metric of two arms compared: values, difference, interval, p-value, verdict."""

    metric: str  # "accuracy", "error rate", "latency", "mean score"
    test: str  # "two-proportion z", "welch t", "mann-whitney u"
    baseline: str  # how the verdict names the arms ("3", "churn/3")
    candidate: str
    baseline_value: float
    candidate_value: float
    difference: float  # candidate - baseline, in ``unit``
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    confidence: float
    n_baseline: int
    n_candidate: int
    needed_per_arm: int | None  # rows per arm to detect the effect at ``power``
    power: float
    unit: str  # "points" (percentage points), "ms", ""
    better: Direction

    @property
    def significant(self) -> bool:
        """The interval excludes zero (p below 1 - confidence)."""
        return self.p_value < 1.0 - self.confidence

    @property
    def more_needed(self) -> int | None:
        """Rows per arm still missing for the chosen power (0 when there are enough)."""
        if self.needed_per_arm is None:
            return None
        return max(self.needed_per_arm - min(self.n_baseline, self.n_candidate), 0)

    @property
    def verdict(self) -> str:
        """One sentence a person can act on."""
        return verdict(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the verdict."""
        return {
            "metric": self.metric,
            "test": self.test,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "baseline_value": self.baseline_value,
            "candidate_value": self.candidate_value,
            "difference": self.difference,
            "ci": [self.ci_low, self.ci_high],
            "confidence": self.confidence,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "n": [self.n_baseline, self.n_candidate],
            "needed_per_arm": self.needed_per_arm,
            "more_needed": self.more_needed,
            "power": self.power,
            "unit": self.unit,
            "better": self.better,
            "significant": self.significant,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class TestResult:
    """A test's raw numbers: statistic, two-sided p-value, difference and its interval."""

    statistic: float
    p_value: float
    difference: float
    ci_low: float
    ci_high: float


def check_levels(confidence: float, power: float) -> None:
    """Raise ``InvalidArgumentError`` unless both are strictly between 0 and 1."""
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(
            f"confidence {confidence} is not between 0 and 1 (e.g. 0.95)", field="confidence"
        )
    if not 0.0 < power < 1.0:
        raise InvalidArgumentError(
            f"power {power} is not between 0 and 1 (e.g. 0.8)", field="power"
        )


# ---------------------------------------------------------------------------- rates


def two_proportions(x1: int, n1: int, x2: int, n2: int, *, confidence: float = 0.95) -> TestResult:
    """z-test of ``x2/n2 - x1/n1`` (pooled variance under the null, two-sided) and the
    Wald interval of the difference. Needs ``n1, n2 > 0``."""
    if n1 <= 0 or n2 <= 0 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise InvalidArgumentError(f"counts {x1}/{n1} and {x2}/{n2} are not proportions")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p2 - p1
    z = diff / se0 if se0 > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z))) if se0 > 0 else 1.0
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * se
    return TestResult(z, p_value, diff, diff - half, diff + half)


def proportions_sample_size(
    p1: float, p2: float, *, confidence: float = 0.95, power: float = 0.8
) -> int | None:
    """Rows per arm for a two-sided z-test to detect ``p1`` vs ``p2`` with ``power``
    (Cohen's h, equal arms); None when the rates are equal."""
    h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
    n = _normal_sample_size(abs(h), 1 - confidence, power)
    return None if n is None else math.ceil(n)


def _normal_sample_size(effect: float, alpha: float, power: float) -> float | None:
    if effect <= 0 or not math.isfinite(effect):
        return None
    crit = float(stats.norm.ppf(1 - alpha / 2))

    def shortfall(n: float) -> float:
        shift = effect * math.sqrt(n / 2)
        return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift)) - power

    return _solve(shortfall, 1e-6, _MAX_N)


def _solve(shortfall: Callable[[float], float], low: float, high: float) -> float | None:
    """The n where ``shortfall`` (power reached minus power wanted) crosses zero."""
    if not shortfall(high) >= 0:
        return None
    if shortfall(low) >= 0:
        return low
    return float(optimize.brentq(shortfall, low, high, xtol=1e-10, rtol=1e-12))


# ---------------------------------------------------------------------------- means


class Summary(NamedTuple):
    """A sample summed up: its mean, standard deviation (ddof=1) and size."""

    mean: float
    std: float
    n: int


def welch(baseline: Summary, candidate: Summary, *, confidence: float = 0.95) -> TestResult:
    """Welch's t-test of ``candidate.mean - baseline.mean`` from summary numbers and its
    Welch-Satterthwaite interval. Needs two rows per arm."""
    mean1, std1, n1 = baseline
    mean2, std2, n2 = candidate
    if n1 < 2 or n2 < 2:
        raise InvalidArgumentError(f"Welch's t-test needs two rows per arm, not {n1} and {n2}")
    v1, v2 = std1**2 / n1, std2**2 / n2
    diff = mean2 - mean1
    se = math.sqrt(v1 + v2)
    if se == 0:
        return TestResult(0.0, 1.0, diff, diff, diff)
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    t = diff / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return TestResult(t, p_value, diff, diff - half, diff + half)


def means_sample_size(
    difference: float, std1: float, std2: float, *, confidence: float = 0.95, power: float = 0.8
) -> int | None:
    """Rows per arm for a two-sided two-sample t-test to detect ``difference`` with
    ``power`` (Cohen's d over the pooled standard deviation, equal arms)."""
    pooled = math.sqrt((std1**2 + std2**2) / 2)
    if pooled == 0:
        return None
    return _t_sample_size(abs(difference) / pooled, 1 - confidence, power)


def _t_sample_size(d: float, alpha: float, power: float) -> int | None:
    normal = _normal_sample_size(d, alpha, power) if math.isfinite(d) else None
    if normal is None:
        return None

    def shortfall(n: float) -> float:
        df = 2 * n - 2
        crit = float(stats.t.isf(alpha / 2, df))
        shift = d * math.sqrt(n / 2)
        return float(stats.nct.sf(crit, df, shift) + stats.nct.cdf(-crit, df, shift)) - power

    # The t-test needs a little more than the z-test: search just above its number
    # (the noncentral t is not computed reliably far beyond it).
    found = _solve(shortfall, 2.0, max(2 * normal, normal + 10))
    return math.ceil(found if found is not None else normal)


# ---------------------------------------------------------------------------- latencies

_U_EFFICIENCY = 3 / math.pi  # asymptotic efficiency of the U test vs the t-test (normal data)
PAIRED_VALUES = 2000  # per side: the shift and its interval sort every pairwise difference
_CAP_SEED = 11


def _capped(values: np.ndarray) -> np.ndarray:
    """At most ``PAIRED_VALUES`` of ``values`` (a fixed random subset): 2000 x 2000
    differences is 32 MB; the U test's p-value still uses every value."""
    if len(values) <= PAIRED_VALUES:
        return values
    return np.random.default_rng(_CAP_SEED).choice(values, PAIRED_VALUES, replace=False)


def mann_whitney(
    baseline: np.ndarray, candidate: np.ndarray, *, confidence: float = 0.95
) -> TestResult:
    """The U test of candidate vs baseline (two-sided, scipy's), the Hodges-Lehmann shift
    (median of every candidate - baseline difference) and its distribution-free interval
    (order statistics of those differences, normal approximation)."""
    x = np.asarray(baseline, dtype=np.float64)
    y = np.asarray(candidate, dtype=np.float64)
    if len(x) == 0 or len(y) == 0:
        raise InvalidArgumentError("the Mann-Whitney test needs values in both arms")
    result = stats.mannwhitneyu(y, x, alternative="two-sided")
    y, x = _capped(y), _capped(x)
    differences = np.sort(np.subtract.outer(y, x).ravel())
    n, m = len(y), len(x)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    k = math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12))
    k = min(max(k, 0), len(differences) - 1)
    low, high = differences[k], differences[len(differences) - 1 - k]
    shift = float(np.median(differences))
    return TestResult(float(result.statistic), float(result.pvalue), shift, float(low), float(high))


def latency_sample_size(
    baseline: np.ndarray, candidate: np.ndarray, *, confidence: float = 0.95, power: float = 0.8
) -> int | None:
    """Rows per arm for the U test to detect the observed shift with ``power``: the
    t-test's number for the shift over the pooled standard deviation, over 3/pi."""
    x = np.asarray(baseline, dtype=np.float64)
    y = np.asarray(candidate, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        return None
    shift = float(np.median(np.subtract.outer(_capped(y), _capped(x))))
    n = means_sample_size(
        shift, float(np.std(x, ddof=1)), float(np.std(y, ddof=1)),
        confidence=confidence, power=power,
    )  # fmt: skip
    return None if n is None else math.ceil(n / _U_EFFICIENCY)


# ---------------------------------------------------------------------------- verdicts


def verdict(c: Comparison) -> str:
    """ "4 is better than 3 on accuracy, +2.1 points, 95% CI [0.8, 3.4]", or why not yet."""
    interval = f"[{_num(c.ci_low)}, {_num(c.ci_high)}]"
    numbers = f"{_signed(c.difference, c.unit)}, {_pct(c.confidence)} CI {interval}"
    if c.difference == c.ci_low == c.ci_high == 0:
        return (
            f"no difference on {c.metric} between {c.candidate} and {c.baseline}: both "
            f"{_level(c.baseline_value, c.unit)}"
        )
    if c.significant:
        return f"{c.candidate} is {_word(c)} than {c.baseline} on {c.metric}, {numbers}"
    more = c.more_needed
    if more is None or more > 0:
        wanted = f"; about {more} more per arm for {_pct(c.power)} power" if more else ""
        return (
            f"not enough data yet on {c.metric}: {c.candidate} vs {c.baseline} {numbers}, "
            f"p={c.p_value:.2g}{wanted}"
        )
    return f"no real difference on {c.metric} between {c.candidate} and {c.baseline}: {numbers}"


def _word(c: Comparison) -> str:
    up = c.difference > 0
    if c.better == "neutral":
        return "higher" if up else "lower"
    good = up if c.better == "higher" else not up
    if c.unit == "ms":
        return "slower" if up else "faster"
    return "better" if good else "worse"


def _level(value: float, unit: str) -> str:
    """A value itself (not a difference): a rate in points reads as a percentage."""
    if unit == "points":
        return f"{value:.1f}%"
    return f"{_num(value)} {unit}".strip()


def _signed(value: float, unit: str) -> str:
    text = f"{'+' if value >= 0 else '-'}{_num(abs(value))}"
    return f"{text} {unit}" if unit else text


def _num(value: float) -> str:
    return f"{value:.1f}" if value == 0 or abs(value) >= 0.1 else f"{value:.2g}"


def _pct(share: float) -> str:
    return f"{share * 100:g}%"
