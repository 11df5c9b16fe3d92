"""Promotion gates: the checks a version passes before it reaches a stage (production).

A gate answers with a ``GateResult``: passed, failed, or could not be evaluated (no
holdout data, no shadow run), each with the numbers behind it. ``GateReport`` is the
whole run; the registry refuses the promotion when any gate failed
(``GateFailedError``), and ``modelport version validate`` prints it (exit code 0 pass,
1 a gate failed, 2 could not evaluate).

The gates themselves live in ``modelport.rollout.gates`` (they load models and read
the prediction log); the registry only sees the ``PromotionGates`` protocol, so that
promotion can run them without importing what they need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from modelport.domain.entities import ModelVersion


class GateOutcome(StrEnum):
    """How one gate ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # not applicable (no shadow has run, no production version yet)
    ERROR = "error"  # could not be evaluated (the holdout file cannot be read, ...)


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with its numbers (``details``: metric, threshold, values)."""

    gate: str
    outcome: GateOutcome
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "gate": self.gate,
            "outcome": self.outcome.value,
            "message": self.message,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class GateReport:
    """Every gate run for one candidate version and target stage."""

    model: str
    version: int
    target: str  # the stage or alias the version is meant for
    results: tuple[GateResult, ...]
    baseline: int | None = None  # the version it was compared with (production's)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        """The gates that failed."""
        return tuple(r for r in self.results if r.outcome is GateOutcome.FAILED)

    @property
    def errors(self) -> tuple[GateResult, ...]:
        """The gates that could not be evaluated."""
        return tuple(r for r in self.results if r.outcome is GateOutcome.ERROR)

    @property
    def passed(self) -> bool:
        """No gate failed and every gate could be evaluated."""
        return not self.failed and not self.errors

    @property
    def exit_code(self) -> int:
        """0 pass, 1 a gate failed, 2 a gate could not be evaluated (and none failed)."""
        if self.failed:
            return 1
        return 2 if self.errors else 0

    def describe(self) -> str:
        """One line per gate that did not pass, for error messages."""
        bad = self.failed + self.errors
        return "; ".join(f"{r.gate}: {r.message}" for r in bad) or "every gate passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``, the REST API, ``GateFailedError.report``)."""
        return {
            "model": self.model,
            "version": self.version,
            "target": self.target,
            "baseline": self.baseline,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "results": [r.to_dict() for r in self.results],
        }


class PromotionGates(Protocol):
    """What the registry calls before moving a gated stage (``rollout.gates`` implements it)."""

    def guards(self, target: str) -> bool:
        """Whether promotions to ``target`` (a stage or alias) run the gates."""
        ...

    def check(self, candidate: ModelVersion, target: str) -> GateReport:
        """Run every gate for ``candidate`` going to ``target``."""
        ...
