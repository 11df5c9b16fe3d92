"""The gates ``[gates] checks`` names, built from their settings.

Each name in ``GatesSettings.checks`` maps to a factory here; ``build_gates`` is what
``bootstrap`` puts on the registry and what ``modelport version validate`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from modelport.config import GatesSettings, Settings
from modelport.errors import InvalidArgumentError
from modelport.monitoring.windows import parse_duration
from modelport.registry.service import RegistryService
from modelport.rollout.gates import Gate, Gates
from modelport.rollout.gates_holdout import HoldoutMetricGate
from modelport.rollout.gates_latency import LatencyGate
from modelport.rollout.gates_package import ArtifactGate, SignatureGate
from modelport.rollout.gates_shadow import ShadowAgreementGate

GATE_FACTORIES: dict[str, Callable[[GatesSettings], Gate]] = {
    "artifacts": lambda _: ArtifactGate(),
    "signature": lambda _: SignatureGate(),
    "holdout": lambda s: HoldoutMetricGate(s.metric, s.max_metric_loss),
    "latency": lambda s: LatencyGate(
        s.latency_budget_ms, repeats=s.latency_repeats, replay=s.latency_replay
    ),
    "shadow": lambda s: ShadowAgreementGate(
        s.min_shadow_agreement, window=_duration(s.shadow_window), min_rows=s.shadow_min_rows
    ),
}


def _duration(text: str) -> timedelta:
    duration = parse_duration(text)
    if duration is None:  # the setting's pattern admits durations only
        raise InvalidArgumentError(f"[gates] shadow_window {text!r} is not a duration (7d)")
    return duration


def configured_gates(settings: GatesSettings) -> list[Gate]:
    """The gates ``settings.checks`` names, in its order (each once)."""
    return [GATE_FACTORIES[name](settings) for name in dict.fromkeys(settings.checks)]


def build_gates(settings: Settings, registry: RegistryService) -> Gates:
    """The configured gates over ``registry``, guarding ``[gates] targets``."""
    return Gates(configured_gates(settings.gates), registry=registry, settings=settings)
