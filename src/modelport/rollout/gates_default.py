"""The gates ``[gates] checks`` names, built from their settings.

Each name in ``GatesSettings.checks`` maps to a factory here; ``build_gates`` is what
``bootstrap`` puts on the registry and what ``modelport version validate`` runs.
"""

from __future__ import annotations

from collections.abc import Callable

from modelport.config import GatesSettings, Settings
from modelport.registry.service import RegistryService
from modelport.rollout.gates import Gate, Gates
from modelport.rollout.gates_holdout import HoldoutMetricGate
from modelport.rollout.gates_latency import LatencyGate
from modelport.rollout.gates_package import ArtifactGate, SignatureGate

GATE_FACTORIES: dict[str, Callable[[GatesSettings], Gate]] = {
    "artifacts": lambda _: ArtifactGate(),
    "signature": lambda _: SignatureGate(),
    "holdout": lambda s: HoldoutMetricGate(s.metric, s.max_metric_loss),
    "latency": lambda s: LatencyGate(
        s.latency_budget_ms, repeats=s.latency_repeats, replay=s.latency_replay
    ),
}


def configured_gates(settings: GatesSettings) -> list[Gate]:
    """The gates ``settings.checks`` names, in its order (each once)."""
    return [GATE_FACTORIES[name](settings) for name in dict.fromkeys(settings.checks)]


def build_gates(settings: Settings, registry: RegistryService) -> Gates:
    """The configured gates over ``registry``, guarding ``[gates] targets``."""
    return Gates(configured_gates(settings.gates), registry=registry, settings=settings)
