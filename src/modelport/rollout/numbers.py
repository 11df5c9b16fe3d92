"""Where the controller gets each arm's numbers over a step.

``ArmNumbersSource`` is what the controller calls: the deployment's name, the arms to
measure and the window; it answers ``ArmNumbers`` per arm name. ``VersionLogNumbers``
reads them from the prediction log by each arm's model version (serving signals, live
accuracy from the labels, drift share against the version's reference statistics).
A canary and its champion are different versions, so the rows of one version are the
rows of one arm, as long as that version answers no other route in the window.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from modelport.domain.deployments import Arm
from modelport.domain.refs import ModelRef
from modelport.errors import ModelportError
from modelport.monitoring.signals import serving_signals
from modelport.rollout.decision import ArmNumbers

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService

logger = logging.getLogger("modelport.rollout")


class ArmNumbersSource(Protocol):
    """Gives the numbers of ``arms`` of deployment ``deployment`` in ``[since, until)``."""

    def __call__(
        self, deployment: str, arms: Sequence[Arm], *, since: datetime, until: datetime
    ) -> Mapping[str, ArmNumbers]:
        """``ArmNumbers`` by arm name, for every arm asked."""
        ...


class VersionLogNumbers:
    """``ArmNumbersSource`` over the prediction log, one arm's rows being its version's."""

    def __init__(self, log_uri: str, registry: RegistryService) -> None:
        self._log_uri = log_uri
        self._registry = registry

    def __call__(
        self, deployment: str, arms: Sequence[Arm], *, since: datetime, until: datetime
    ) -> Mapping[str, ArmNumbers]:
        """See ``ArmNumbersSource``."""
        return {arm.name: self._arm(arm, since, until) for arm in arms}

    def _arm(self, arm: Arm, since: datetime, until: datetime) -> ArmNumbers:
        version = str(arm.version)
        signals = serving_signals(
            self._log_uri, arm.model, version=version, since=since, until=until
        )
        labelled, accuracy = self._accuracy(arm, since, until) if signals.requests else (0, None)
        drift = (
            drift_share(self._log_uri, self._registry, arm, since, until)
            if signals.requests
            else None
        )
        p99 = signals.p99_latency_s
        return ArmNumbers(
            arm=arm.name,
            version=arm.version,
            requests=signals.requests,
            errors=signals.errors,
            latency_p99_ms=p99 * 1000.0 if p99 is not None else None,
            labelled=labelled,
            accuracy=accuracy,
            drift_share=drift,
        )

    def _accuracy(self, arm: Arm, since: datetime, until: datetime) -> tuple[int, float | None]:
        from modelport.monitoring.performance import live_performance  # numpy: when first used

        try:
            report = live_performance(
                self._log_uri, arm.model, version=str(arm.version), since=since, until=until
            )
        except ModelportError as exc:  # e.g. labels of a kind the task cannot score
            logger.warning("rollout: no live accuracy for %s: %s", arm.ref, exc)
            return 0, None
        return int(report.labeled), report.metrics.get("accuracy")


def drift_share(
    log_uri: str, registry: RegistryService, arm: Arm, since: datetime, until: datetime
) -> float | None:
    """The share of input columns of ``arm``'s version that drifted in the window from
    its reference statistics; None when it has none (or none of their columns logged)."""
    from modelport.monitoring.drift_window import drift_over_log  # scipy: when first used

    try:
        stats, _ = registry.reference_stats(ModelRef(arm.model, version=arm.version))
        if stats is None:
            return None
        window = drift_over_log(
            log_uri, arm.model, stats, version=str(arm.version), since=since, until=until
        )
    except ModelportError as exc:
        logger.info("rollout: no drift share for %s: %s", arm.ref, exc)
        return None
    return float(window.report.share_drifted)
