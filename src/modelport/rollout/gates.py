"""Promotion gates: the checks a version passes before a guarded stage (production).

``Gates`` implements the registry's ``PromotionGates``: for a candidate version and a
target it finds the baseline (the version the target points at now), runs each
``Gate`` and collects their ``GateResult`` in a ``GateReport``. A gate that raises is
reported as ``ERROR`` (could not be evaluated) with the cause, never as a pass.

The gates share one ``GateContext`` per run: the registry, the settings, the holdout
file and its label column, the prediction log, and the versions loaded so far (each
version is loaded once per run, however many gates use it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from modelport.config import Settings
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateReport, GateResult
from modelport.domain.refs import ModelRef
from modelport.errors import ModelportError
from modelport.package.loaded import LoadedModel
from modelport.registry.service import RegistryService

logger = logging.getLogger("modelport.rollout.gates")


@dataclass
class GateContext:
    """What a gate may use besides the two versions it compares."""

    registry: RegistryService
    settings: Settings
    holdout: Path | None = None  # a labelled CSV or Parquet file
    label: str | None = None  # its label column
    log_uri: str | None = None  # the prediction log
    _loaded: dict[tuple[str, int], LoadedModel] = field(
        default_factory=dict, init=False, repr=False
    )

    def load(self, version: ModelVersion) -> LoadedModel:
        """``version`` loaded through the registry (files verified, safe formats only),
        once per gate run."""
        key = (version.name, version.version)
        if key not in self._loaded:
            ref = ModelRef(version.name, version=version.version)
            self._loaded[key] = self.registry.load(ref)
        return self._loaded[key]

    def close(self) -> None:
        """Release the loaded versions."""
        for loaded in self._loaded.values():
            loaded.close()
        self._loaded.clear()


class Gate(Protocol):
    """One check of a candidate version against the baseline (None: nothing holds the
    target yet)."""

    name: str

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, context: GateContext
    ) -> GateResult:
        """The verdict with its numbers."""
        ...


class Gates:
    """The gates that guard some targets (``[gates] targets``), run in order."""

    def __init__(
        self,
        gates: Sequence[Gate],
        *,
        registry: RegistryService,
        settings: Settings,
        targets: Sequence[str] | None = None,
    ) -> None:
        self.gates = tuple(gates)
        self._registry = registry
        self._settings = settings
        guarded = settings.gates.targets if targets is None else targets
        self.targets = frozenset(guarded)

    def guards(self, target: str) -> bool:
        """Whether promotions to ``target`` run the gates."""
        return target in self.targets and bool(self.gates)

    def check(self, candidate: ModelVersion, target: str) -> GateReport:
        """Every gate for ``candidate`` going to ``target``, with the configured holdout."""
        gates = self._settings.gates
        holdout = Path(gates.holdout).expanduser() if gates.holdout else None
        return self.evaluate(candidate, target, holdout=holdout, label=gates.label)

    def evaluate(
        self,
        candidate: ModelVersion,
        target: str,
        *,
        holdout: Path | None = None,
        label: str | None = None,
    ) -> GateReport:
        """Every gate for ``candidate`` going to ``target`` (``modelport version validate``)."""
        baseline = self._baseline(candidate, target)
        context = GateContext(
            self._registry,
            self._settings,
            holdout=holdout,
            label=label,
            log_uri=self._settings.resolved_prediction_log_uri,
        )
        try:
            results = tuple(_run(gate, candidate, baseline, context) for gate in self.gates)
        finally:
            context.close()
        return GateReport(
            candidate.name,
            candidate.version,
            target,
            results,
            baseline=baseline.version if baseline is not None else None,
        )

    def _baseline(self, candidate: ModelVersion, target: str) -> ModelVersion | None:
        """The version ``target`` points at now, unless it is the candidate itself."""
        model = self._registry.get_model(candidate.name)
        number = model.aliases.get(target)
        if number is None or number == candidate.version:
            return None
        return self._registry.get_version(candidate.name, number)


def _run(
    gate: Gate, candidate: ModelVersion, baseline: ModelVersion | None, context: GateContext
) -> GateResult:
    """The gate's verdict; ``ERROR`` with the cause when it raises."""
    try:
        return gate.evaluate(candidate, baseline, context)
    except ModelportError as exc:
        return GateResult(gate.name, GateOutcome.ERROR, exc.message, {"error": exc.code})
    except Exception as exc:  # a model's own code may raise anything: the gate is undecided
        logger.exception("the %s gate failed to evaluate %s", gate.name, candidate.ref)
        return GateResult(
            gate.name, GateOutcome.ERROR, f"{type(exc).__name__}: {exc}", {"error": "internal"}
        )
