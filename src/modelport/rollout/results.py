"""A/B results of a deployment: every arm's numbers, and each arm against the champion.

For each arm other than the champion (canary, challengers, shadows) and each metric both
arms have, a ``statistics.Comparison``: accuracy and error rate with the two-proportion
z-test (in percentage points), latency with the Mann-Whitney U test (the shift in ms),
the mean score with Welch's t-test. ``status`` is the cheaper half: the numbers alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelport.domain.deployments import Arm, Deployment
from modelport.errors import InvalidArgumentError
from modelport.monitoring.arms import ArmStats, ShadowComparison, arm_stats, compare_shadow
from modelport.rollout import statistics as st

POINTS = 100.0  # rates are compared in percentage points


@dataclass(frozen=True)
class ResultsOptions:
    """How sure a verdict must be, and what to average."""

    confidence: float = 0.95
    power: float = 0.8
    score: str | None = None  # a logged numeric column (default: a numeric prediction)


@dataclass
class DeploymentStatus:
    """A deployment's arms with what each did over a window."""

    deployment: Deployment
    since: datetime
    until: datetime | None
    stats: dict[str, ArmStats]
    comparisons: list[st.Comparison]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the arms (spec and numbers), comparisons and their verdicts."""
        live_requests = sum(self.stats[a.name].requests for a in self.deployment.live_arms)
        arms = []
        for arm in self.deployment.arms:
            numbers = self.stats[arm.name]
            share = numbers.requests / live_requests if arm.live and live_requests else None
            arms.append({**arm.to_dict(), **numbers.to_dict(), "traffic_share": share})
        return {
            "deployment": self.deployment.name,
            "revision": self.deployment.revision,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "arms": arms,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "verdicts": [c.verdict for c in self.comparisons],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def deployment_status(
    log_uri: str,
    deployment: Deployment,
    *,
    since: datetime,
    until: datetime | None = None,
    options: ResultsOptions | None = None,
    compare: bool = False,
) -> DeploymentStatus:
    """Every arm's numbers over ``[since, until)``; with ``compare``, each arm other than
    the champion tested against it."""
    options = options or ResultsOptions()
    st.check_levels(options.confidence, options.power)
    stats = arm_stats(
        log_uri, deployment.name, deployment.arms, since=since, until=until, score=options.score
    )
    comparisons: list[st.Comparison] = []
    if compare:
        champion = deployment.champion
        for arm in deployment.arms:
            if arm.name != champion.name:
                comparisons += compare_arms(
                    stats[champion.name], stats[arm.name], options, names=_names(deployment, arm)
                )
    return DeploymentStatus(deployment, since, until, stats, comparisons)


def _names(deployment: Deployment, arm: Arm) -> tuple[str, str]:
    """How verdicts call the champion and ``arm``: versions, refs when the models
    differ, arm names when the versions are the same."""
    champion = deployment.champion
    if (champion.model, champion.version) == (arm.model, arm.version):
        return champion.name, arm.name
    if champion.model == arm.model:
        return str(champion.version), str(arm.version)
    return champion.ref, arm.ref


def compare_arms(
    baseline: ArmStats,
    candidate: ArmStats,
    options: ResultsOptions | None = None,
    *,
    names: tuple[str, str] | None = None,
) -> list[st.Comparison]:
    """``candidate`` against ``baseline`` on every metric both have numbers for."""
    options = options or ResultsOptions()
    names = names or (baseline.arm, candidate.arm)
    both_labelled = baseline.accuracy is not None and candidate.accuracy is not None
    accuracy = (baseline.correct, baseline.labelled, candidate.correct, candidate.labelled)
    errors = (baseline.errors, baseline.requests, candidate.errors, candidate.requests)
    found = [
        _rate(names, "accuracy", "higher", accuracy, options) if both_labelled else None,
        _rate(names, "error rate", "lower", errors, options),
        _latency(names, baseline, candidate, options),
        _mean(names, baseline, candidate, options),
    ]
    return [c for c in found if c is not None]


def _rate(
    names: tuple[str, str],
    metric: str,
    better: st.Direction,
    counts: tuple[int, int, int, int],
    options: ResultsOptions,
) -> st.Comparison | None:
    """``counts``: successes and rows of the baseline, then of the candidate."""
    x1, n1, x2, n2 = counts
    if n1 == 0 or n2 == 0:
        return None
    test = st.two_proportions(x1, n1, x2, n2, confidence=options.confidence)
    needed = st.proportions_sample_size(
        x1 / n1, x2 / n2, confidence=options.confidence, power=options.power
    )
    return st.Comparison(
        metric, "two-proportion z", *names, x1 / n1 * POINTS, x2 / n2 * POINTS,
        test.difference * POINTS, test.ci_low * POINTS, test.ci_high * POINTS,
        test.p_value, test.statistic, options.confidence, n1, n2, needed, options.power,
        "points", better,
    )  # fmt: skip


def _latency(
    names: tuple[str, str], baseline: ArmStats, candidate: ArmStats, options: ResultsOptions
) -> st.Comparison | None:
    x, y = baseline.latencies_ms, candidate.latencies_ms
    if len(x) == 0 or len(y) == 0 or baseline.latency_p50_ms is None:
        return None
    if candidate.latency_p50_ms is None:
        return None
    test = st.mann_whitney(x, y, confidence=options.confidence)
    needed = st.latency_sample_size(x, y, confidence=options.confidence, power=options.power)
    return st.Comparison(
        "latency", "mann-whitney u", *names, baseline.latency_p50_ms, candidate.latency_p50_ms,
        test.difference, test.ci_low, test.ci_high, test.p_value, test.statistic,
        options.confidence, len(x), len(y), needed, options.power, "ms", "lower",
    )  # fmt: skip


def _mean(
    names: tuple[str, str], baseline: ArmStats, candidate: ArmStats, options: ResultsOptions
) -> st.Comparison | None:
    b, c = baseline, candidate
    if b.scored < 2 or c.scored < 2 or b.score_column != c.score_column:
        return None
    if b.mean_score is None or c.mean_score is None or b.score_std is None or c.score_std is None:
        return None
    test = st.welch(
        st.Summary(b.mean_score, b.score_std, b.scored),
        st.Summary(c.mean_score, c.score_std, c.scored),
        confidence=options.confidence,
    )
    needed = st.means_sample_size(
        c.mean_score - b.mean_score, b.score_std, c.score_std,
        confidence=options.confidence, power=options.power,
    )  # fmt: skip
    return st.Comparison(
        f"mean {b.score_column}", "welch t", *names, b.mean_score, c.mean_score,
        test.difference, test.ci_low, test.ci_high, test.p_value, test.statistic,
        options.confidence, b.scored, c.scored, needed, options.power, "", "neutral",
    )  # fmt: skip


def shadow_comparisons(
    log_uri: str,
    deployment: Deployment,
    *,
    since: datetime,
    until: datetime | None = None,
    shadow: str | None = None,
    top: int = 10,
) -> list[ShadowComparison]:
    """Every shadow arm (or the one named) against the champion."""
    arms = [deployment.arm(shadow)] if shadow is not None else list(deployment.shadow_arms)
    if not arms:
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} has no shadow arm to compare: add one with "
            f"`modelport deploy shadow {deployment.name} --version N --sample 0.5`",
            field="shadow",
        )
    if any(arm.live for arm in arms):
        raise InvalidArgumentError(
            f"arm {shadow!r} of deployment {deployment.name!r} is not a shadow: compare "
            "live arms with `deploy results`",
            field="shadow",
        )
    return [
        compare_shadow(
            log_uri, deployment.name, deployment.champion, arm, since=since, until=until, top=top
        )
        for arm in arms
    ]
