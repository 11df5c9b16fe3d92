"""A target that feeds the live drift sketches (``monitoring.drift_live``).

It hands each answered request's bound inputs and outputs, by reference, to its
version's sketch; the sketch's thread does the rest. So a request pays one deque
append. The columns are named as the reference statistics name them: inputs by
their signature name (a tabular model's matrix split into its columns; a tensor's
``name[j]`` columns), ``prediction`` and ``probability.<class>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from modelport.serving.interface import PREDICTIONS, PROBABILITIES, Layout, ModelIO
from modelport.serving.target import InferenceRequest, InferenceResult, InferenceTarget

DriftObserver = Callable[[Any], None]
"""Takes one answered request's ``(bound inputs, outputs)`` for a version's sketch."""


class DriftingTarget:
    """Wraps one version's target and sketches what passes through it."""

    def __init__(self, inner: InferenceTarget, observe: DriftObserver) -> None:
        self._inner = inner
        self._observe = observe

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """The inner target's answer; its arrays are queued for the sketch."""
        result = await self._inner.infer(request)
        self._observe((result.inputs.batch, result.outputs))
        return result


Payload = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


def extractor(io: ModelIO, references: Sequence[str]) -> Callable[[Payload], dict[str, np.ndarray]]:
    """The function the sketch's thread calls on a queued ``(batch, outputs)``."""
    known = frozenset(references)
    matrix = io.column_names if io.layout is Layout.MATRIX else None
    classes = [
        name.removeprefix("probability.") for name in references if name.startswith("probability.")
    ]

    def extract(payload: Payload) -> dict[str, np.ndarray]:
        batch, outputs = payload
        columns: dict[str, np.ndarray] = {}
        for name, array in batch.items():
            if matrix is not None and array.ndim == 2 and array.shape[1] == len(matrix):
                for j, column in enumerate(matrix):
                    if column in known:
                        columns[column] = array[:, j]
            elif name in known:
                columns[name] = array
            elif array.ndim == 2 and f"{name}[0]" in known:
                for j in range(array.shape[1]):
                    columns[f"{name}[{j}]"] = array[:, j]
        predictions = outputs.get(PREDICTIONS)
        if predictions is not None and "prediction" in known and predictions.ndim == 1:
            columns["prediction"] = predictions
        probabilities = outputs.get(PROBABILITIES)
        if probabilities is not None and probabilities.ndim == 2 and classes:
            for j, label in enumerate(classes[: probabilities.shape[1]]):
                columns[f"probability.{label}"] = probabilities[:, j]
        return columns

    return extract
