"""Checking a converted graph against the native model before it is stored.

The graph runs, as the server would run it, on the sample rows the native predictions
were computed on (at most 10,000), and its outputs must match the native ones:

* labels exactly, once the graph's labels are cast to the native dtype;
* class probabilities within ``PROBABILITY_ATOL`` (absolute: probabilities are in [0, 1]);
* regression values within ``REGRESSION_RTOL * |native| + REGRESSION_ATOL * max(1, scale)``,
  ``scale`` being the largest native prediction in magnitude, since float32 rounding in
  the graph grows with the magnitude of the sums it computes.

Predictions are values (compared within the tolerance) when they are floats and the
model gives no probabilities; otherwise they are labels. A check that fails raises
``GraphUnavailableError`` with what differed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.flavors.onnx_conversion import GraphUnavailableError, first_line
from modelport.package.onnx_predictor import AcceleratedPredictor

PROBABILITY_ATOL = 1e-4
REGRESSION_RTOL = 1e-4
REGRESSION_ATOL = 1e-6


def predicts_values(native: np.ndarray, probabilities: np.ndarray | None) -> bool:
    """Whether the native predictions are values checked within a tolerance (floats,
    without class probabilities) rather than labels checked exactly."""
    return probabilities is None and native.dtype.kind == "f"


def compare(
    predictor: AcceleratedPredictor,
    batch: Any,
    native: np.ndarray,
    probabilities: np.ndarray | None,
) -> tuple[float, float | None]:
    """(largest absolute difference, tolerance) once the graph's outputs on ``batch``
    are shown to match the native ones."""
    try:
        predicted = np.asarray(predictor.predict(batch))
        proba = predictor.predict_proba(batch) if probabilities is not None else None
    except Exception as exc:  # onnxruntime raises untyped errors
        raise GraphUnavailableError(
            f"onnxruntime failed on the sample: {first_line(exc)}"
        ) from None
    if predicted.shape != native.shape:
        raise GraphUnavailableError(
            f"the graph's predictions have shape {list(predicted.shape)}, the native "
            f"model's {list(native.shape)}"
        )
    if predicts_values(native, probabilities):
        return _check_values(predicted, native)
    _check_labels(predicted, native)
    if proba is None or probabilities is None:
        return 0.0, None
    return _check_probabilities(np.asarray(proba), probabilities)


def _check_labels(predicted: np.ndarray, native: np.ndarray) -> None:
    differ = np.asarray(predicted != native).reshape(len(native), -1).any(axis=1)
    count = int(np.count_nonzero(differ))
    if count:
        raise GraphUnavailableError(
            f"{count} of {len(native)} labels differ from the native model's on the sample"
        )


def _check_values(predicted: np.ndarray, native: np.ndarray) -> tuple[float, float]:
    expected = native.astype(np.float64)
    finite = np.abs(expected[np.isfinite(expected)])
    atol = REGRESSION_ATOL * max(1.0, float(finite.max()) if finite.size else 1.0)
    both_missing = np.isnan(expected) & np.isnan(predicted.astype(np.float64))
    diff = np.where(both_missing, 0.0, np.abs(predicted.astype(np.float64) - expected))
    bad = ~(diff <= atol + REGRESSION_RTOL * np.abs(expected))
    worst = float(np.max(diff)) if diff.size else 0.0
    if bad.any():
        raise GraphUnavailableError(
            f"{int(np.count_nonzero(bad))} of {len(native)} predictions differ from the "
            f"native model's by more than rtol {REGRESSION_RTOL:g} + atol {atol:.3g} "
            f"(largest difference {worst:.3g})"
        )
    return worst, atol


def _check_probabilities(proba: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    if proba.shape != expected.shape:
        raise GraphUnavailableError(
            f"the graph's probabilities have shape {list(proba.shape)}, the native model's "
            f"{list(expected.shape)}"
        )
    diff = np.abs(proba - expected.astype(np.float64))
    worst = float(np.max(diff)) if diff.size else 0.0
    if not worst <= PROBABILITY_ATOL:
        raise GraphUnavailableError(
            f"probabilities differ from the native model's by up to {worst:.3g} "
            f"(tolerance {PROBABILITY_ATOL:g})"
        )
    return worst, PROBABILITY_ATOL
