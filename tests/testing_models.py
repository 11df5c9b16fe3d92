"""Custom models whose behaviour the server tests control through their config.

They live in their own top-level module so that modelport packages them as code
(``PythonModel``), the way a user's own models are packaged.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from modelport import PythonModel, PythonModelContext


class EchoModel(PythonModel):
    """Predicts ``offset + sum of each row``, after ``delay`` seconds per call; a row whose
    first value is ``fail_on`` raises, one equal to ``crash_on`` kills the process."""

    def load(self, context: PythonModelContext) -> None:
        self.delay = float(context.config.get("delay", 0.0))
        self.offset = float(context.config.get("offset", 0.0))
        self.fail_on = context.config.get("fail_on")
        self.crash_on = context.config.get("crash_on")

    def predict(self, batch: Any) -> np.ndarray:
        x = np.asarray(batch, dtype=float).reshape(len(batch), -1)
        if self.crash_on is not None and (x[:, 0] == self.crash_on).any():
            os._exit(17)  # a model that brings its worker down
        if self.fail_on is not None and (x[:, 0] == self.fail_on).any():
            raise ValueError("this row makes the model fail")
        if self.delay:
            time.sleep(self.delay)
        return self.offset + x.sum(axis=1)


class ScaledModel(PythonModel):
    """Predicts ``scale * (sum of each row) + shift`` from its inference params, after
    ``delay`` seconds per call; ``predict_proba`` is absent (a regressor)."""

    def load(self, context: PythonModelContext) -> None:
        self.delay = float(context.config.get("delay", 0.0))

    def predict(self, batch: Any, params: Any = None) -> np.ndarray:
        x = np.asarray(batch, dtype=float).reshape(len(batch), -1)
        if self.delay:
            time.sleep(self.delay)
        scale = params.pop("scale")  # a model may change its own params (MLflow's are a dict)
        return scale * x.sum(axis=1) + params["shift"]


class GarbageModel(PythonModel):
    """Sums rows like ``EchoModel`` for batches of several rows (so that its package
    registers), and answers nonsense to a single row: one text value with control
    characters, of the wrong type and length for the request."""

    def predict(self, batch: Any) -> np.ndarray:
        x = np.asarray(batch, dtype=float).reshape(len(batch), -1)
        if len(x) == 1:
            return np.asarray(["\x00garbage\ufffd", "more"], dtype=object)
        return x.sum(axis=1)
