"""The synchronous Predictor contract of a loaded model: what every flavor's predictor,
the accelerated ONNX predictor and ``modelport.load(...)`` implement, and what batch
scoring calls.

The server does not wrap Predictors: it reaches a model through the async serving
contract (``serving.target.InferenceTarget``), whose innermost target runs a Predictor
on each batch; routers, loggers and guards wrap targets.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Batch = Any
"""A batch of inputs or outputs: a DataFrame, an ndarray, or a dict of named ndarrays."""


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns a batch of inputs into a batch of outputs, synchronously."""

    def predict(self, batch: Batch) -> Batch:
        """Predict for every row (or leading-axis element) of ``batch``."""
        ...

    def close(self) -> None:
        """Release what the predictor holds (sessions, threads, files)."""
        ...


def accepts_params(predictor: object) -> bool:
    """Whether a predictor takes inference parameters: it has ``accepts_params`` true, and
    then its ``predict(batch, params)`` and ``predict_proba(batch, params)`` take a
    mapping of them (only custom Python models whose ``predict`` has a ``params``
    argument do; the other flavors' frameworks have no such argument)."""
    return bool(getattr(predictor, "accepts_params", False))


@runtime_checkable
class ModelPredictor(Predictor, Protocol):
    """A Predictor backed by one model, which may also give class probabilities."""

    @property
    def supports_proba(self) -> bool:
        """Whether ``predict_proba`` is available."""
        ...

    def predict_proba(self, batch: Batch) -> Batch:
        """Class probabilities, one row per input row; raises ``UnsupportedOperationError``
        when the model has none."""
        ...
