"""The shadow agreement gate: a version that ran as a shadow agreed with the champion.

When the candidate version has run as a shadow arm of a deployment, its logged answers
are joined with the champion's for the same requests (``monitoring.arms.
compare_shadow``) over a recent window; the gate passes when they agree on at least
``min_agreement`` of the rows. It is skipped when the version has not run as a shadow,
or on too few rows to judge, and never guesses.

It follows ``rollout.gates.Gate``; the context it needs is only the registry's
deployments and the prediction log (``ShadowGateContext``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from modelport.domain.deployments import Arm, Deployment
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateResult
from modelport.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modelport.monitoring.arms import ShadowComparison

DEFAULT_MIN_AGREEMENT = 0.95
DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_MIN_ROWS = 100


class DeploymentLister(Protocol):
    """The part of the registry the gate reads."""

    def list_deployments(self) -> list[Deployment]:
        """Every deployment."""
        ...


class ShadowGateContext(Protocol):
    """What the gate uses of ``rollout.gates.GateContext``."""

    @property
    def registry(self) -> DeploymentLister:
        """The registry."""
        ...

    @property
    def log_uri(self) -> str | None:
        """The prediction log."""
        ...


class ShadowAgreementGate:
    """Passes when the candidate, run as a shadow, agreed with the champion enough."""

    name = "shadow"  # as ``[gates] checks`` names it

    def __init__(
        self,
        min_agreement: float = DEFAULT_MIN_AGREEMENT,
        *,
        window: timedelta = DEFAULT_WINDOW,
        min_rows: int = DEFAULT_MIN_ROWS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not 0.0 <= min_agreement <= 1.0:
            raise InvalidArgumentError(
                f"min_agreement {min_agreement} is not between 0 and 1", field="min_agreement"
            )
        self.min_agreement = min_agreement
        self.window = window
        self.min_rows = min_rows
        self._clock = clock or (lambda: datetime.now(UTC))

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, context: ShadowGateContext
    ) -> GateResult:
        """The agreement over the window with its numbers; skipped without a shadow run."""
        if context.log_uri is None:
            return self._result(GateOutcome.SKIPPED, "no prediction log to read")
        runs = _shadow_runs(context.registry.list_deployments(), candidate)
        if not runs:
            return self._result(
                GateOutcome.SKIPPED, f"{candidate.name}/{candidate.version} has not run as a shadow"
            )
        # Imported here: the log's reader (DuckDB) is not needed to open the registry.
        from modelport.monitoring.arms import compare_shadow

        since = self._clock() - self.window
        compared = [
            compare_shadow(context.log_uri, d.name, d.champion, arm, since=since, top=5)
            for d, arm in runs
        ]
        return self._judge(compared, since)

    def _judge(self, compared: Sequence[ShadowComparison], since: datetime) -> GateResult:
        rows = sum(c.rows for c in compared)
        agreeing = sum(c.agreeing for c in compared)
        details: dict[str, Any] = {
            "rows": rows,
            "agreeing": agreeing,
            "min_agreement": self.min_agreement,
            "min_rows": self.min_rows,
            "since": since.isoformat(),
            "shadows": [_summary(c) for c in compared],
        }
        if rows < self.min_rows:
            message = (
                f"only {rows} rows answered by both the shadow and the champion since "
                f"{since:%Y-%m-%d %H:%M} UTC, fewer than the {self.min_rows} needed to judge"
            )
            return self._result(GateOutcome.SKIPPED, message, details)
        rate = agreeing / rows
        details["agreement_rate"] = rate
        outcome = GateOutcome.PASSED if rate >= self.min_agreement else GateOutcome.FAILED
        relation = "at least" if outcome is GateOutcome.PASSED else "below"
        message = (
            f"agreed with the champion on {rate:.1%} of {rows} rows, {relation} the "
            f"{self.min_agreement:.1%} required"
        )
        return self._result(outcome, message, details)

    def _result(
        self, outcome: GateOutcome, message: str, details: dict[str, Any] | None = None
    ) -> GateResult:
        return GateResult(self.name, outcome, message, details or {})


def _shadow_runs(
    deployments: Sequence[Deployment], candidate: ModelVersion
) -> list[tuple[Deployment, Arm]]:
    """Every (deployment, shadow arm) running the candidate version."""
    return [
        (deployment, arm)
        for deployment in deployments
        for arm in deployment.shadow_arms
        if (arm.model, arm.version) == (candidate.name, candidate.version)
    ]


def _summary(comparison: ShadowComparison) -> dict[str, Any]:
    return {
        "deployment": comparison.deployment,
        "champion": comparison.champion,
        "shadow": comparison.shadow,
        "rows": comparison.rows,
        "agreement_rate": comparison.agreement_rate,
        "mean_abs_diff": comparison.mean_abs_diff,
        "max_abs_diff": comparison.max_abs_diff,
    }
