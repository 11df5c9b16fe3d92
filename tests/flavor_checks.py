"""Assertions shared by the flavor tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.domain.predictor import ModelPredictor


def assert_same_predictions(
    model: Any, predictor: ModelPredictor, batch: Any, *, exact_proba: bool = False
) -> None:
    """The reloaded predictor gives the original model's labels (same values and dtype)
    and, where the model has them, its probabilities (equal, or within float tolerance)."""
    expected = model.predict(batch)
    actual = predictor.predict(batch)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    if hasattr(model, "predict_proba"):
        compare = np.testing.assert_array_equal if exact_proba else np.testing.assert_allclose
        compare(predictor.predict_proba(batch), model.predict_proba(batch))
