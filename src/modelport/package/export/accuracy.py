"""How closely an exported graph answers like the native model on the check rows.

Two numbers, compared with limits the caller chooses:

* ``label_agreement``: the share of rows whose label is the native one (classifiers);
* ``max_abs_diff``: the largest absolute difference in class probabilities
  (classifiers), or in predicted values (regressors), where the limit is relative to the
  largest native value in magnitude (at least 1), since float32 rounding grows with
  the magnitude of the values.

An unquantized graph has already passed acceleration's stricter check (labels equal,
probabilities within 1e-4) on the same rows; these limits matter for a quantized one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.domain.predictor import ModelPredictor
from modelport.errors import UnsupportedOperationError
from modelport.flavors.onnx_conversion import first_line
from modelport.package.acceleration.verification import predicts_values
from modelport.package.export.graph import NativeAnswers

DEFAULT_TOLERANCE = 0.05
DEFAULT_MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Accuracy:
    """The graph against the native model on ``rows`` rows (``example_rows`` from the
    input example, ``reference_rows`` drawn from the reference statistics)."""

    rows: int
    example_rows: int
    reference_rows: int
    label_agreement: float | None
    max_abs_diff: float | None
    compared: str
    tolerance: float
    min_agreement: float
    scale: float = 1.0

    @property
    def within_tolerance(self) -> bool:
        """Whether both numbers are within their limits."""
        agreement = self.label_agreement is None or self.label_agreement >= self.min_agreement
        difference = self.max_abs_diff is None or self.max_abs_diff <= self.tolerance * self.scale
        return agreement and difference

    def describe(self) -> str:
        """The numbers and their limits, in words."""
        parts = []
        if self.label_agreement is not None:
            parts.append(
                f"labels agree on {self.label_agreement:.2%} of {self.rows} rows "
                f"(at least {self.min_agreement:.2%} required)"
            )
        if self.max_abs_diff is not None:
            limit = self.tolerance * self.scale
            parts.append(
                f"{self.compared} differ by up to {self.max_abs_diff:.3g} (tolerance {limit:.3g})"
            )
        return "; ".join(parts) or f"{self.rows} rows compared"

    def to_dict(self) -> dict[str, Any]:
        """As ``--json`` shows it."""
        return {
            "rows": self.rows,
            "example_rows": self.example_rows,
            "reference_rows": self.reference_rows,
            "label_agreement": self.label_agreement,
            "max_abs_diff": self.max_abs_diff,
            "compared": self.compared,
            "tolerance": self.tolerance * self.scale,
            "min_agreement": self.min_agreement,
            "within_tolerance": self.within_tolerance,
        }


@dataclass(frozen=True)
class Limits:
    """The accepted distance from the native model."""

    tolerance: float = DEFAULT_TOLERANCE
    min_agreement: float = DEFAULT_MIN_AGREEMENT

    @classmethod
    def of(cls, tolerance: float | None, min_agreement: float | None) -> Limits:
        """The given limits, the defaults for those that are None."""
        return cls(
            DEFAULT_TOLERANCE if tolerance is None else tolerance,
            DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement,
        )


def measure(
    graph: ModelPredictor, native: NativeAnswers, limits: Limits, counts: tuple[int, int]
) -> Accuracy:
    """Run ``graph`` on the check rows and compare it with the native answers;
    ``counts`` is (example rows, reference rows)."""
    try:
        predicted = np.asarray(graph.predict(native.batch))
        proba = (
            np.asarray(graph.predict_proba(native.batch), dtype=np.float64)
            if native.probabilities is not None and graph.supports_proba
            else None
        )
    except Exception as exc:  # onnxruntime raises untyped errors
        raise UnsupportedOperationError(
            f"the exported graph fails on the check rows: {first_line(exc)}"
        ) from None
    expected = native.predictions
    rows = len(expected)
    common: dict[str, Any] = {"rows": rows, "example_rows": counts[0]}
    common |= {"reference_rows": counts[1], "tolerance": limits.tolerance}
    common["min_agreement"] = limits.min_agreement
    if predicts_values(expected, native.probabilities):
        values = expected.astype(np.float64)
        diff = _largest(predicted.astype(np.float64).reshape(values.shape), values)
        finite = np.abs(values[np.isfinite(values)])
        scale = max(1.0, float(finite.max()) if finite.size else 1.0)
        return Accuracy(**common, label_agreement=None, max_abs_diff=diff,
                        compared="predictions", scale=scale)  # fmt: skip
    same = np.asarray(predicted.reshape(expected.shape) == expected).reshape(rows, -1).all(axis=1)
    agreement = float(np.mean(same)) if rows else 1.0
    difference = None
    if proba is not None and native.probabilities is not None:
        difference = _largest(proba, native.probabilities.astype(np.float64))
    return Accuracy(**common, label_agreement=agreement, max_abs_diff=difference,
                    compared="probabilities")  # fmt: skip


def _largest(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference; missing on both sides is agreement, missing on
    one side only is an infinite difference."""
    diff = np.abs(got - expected)
    both = np.isnan(got) & np.isnan(expected)
    diff = np.where(both, 0.0, np.where(np.isnan(diff), np.inf, diff))
    return float(diff.max()) if diff.size else 0.0
