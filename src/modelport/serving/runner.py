"""Running a loaded model on a batch in the server's layout.

The batch arrives as numpy arrays (``serving.binding``); each runtime wants its own
input: an accelerated ONNX graph takes the arrays as they are, while a native
scikit-learn/XGBoost/LightGBM model that was trained on a DataFrame gets one built
once per batch (never per request) with the signature's column names and types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelport.domain.layout import MATRIX_INPUT
from modelport.package.loaded import LoadedModel
from modelport.package.onnx_predictor import RUNTIME as ACCELERATED_RUNTIME
from modelport.serving.interface import PREDICTIONS, PROBABILITIES, Layout, ModelIO

Batch = dict[str, np.ndarray]


class ModelRunner:
    """Calls one model's predictor with a batch and returns the requested outputs."""

    def __init__(self, loaded: LoadedModel, io: ModelIO) -> None:
        self._predictor = loaded.predictor
        self._native = _native_input(io, accelerated=loaded.runtime == ACCELERATED_RUNTIME)
        self._io = io

    def __call__(
        self, batch: Batch, outputs: frozenset[str], params: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """The requested outputs for ``batch``; ``params`` (inference parameters) go to
        a predictor that takes them (``domain.predictor.accepts_params``), None to others."""
        x = self._native(batch)
        predictor: Any = self._predictor
        result: dict[str, np.ndarray] = {}
        if PREDICTIONS in outputs:
            value = predictor.predict(x) if params is None else predictor.predict(x, params)
            result[PREDICTIONS] = _as_output(value, self._io, PREDICTIONS)
        if PROBABILITIES in outputs:
            value = (
                predictor.predict_proba(x) if params is None else predictor.predict_proba(x, params)
            )
            result[PROBABILITIES] = _as_output(value, self._io, PROBABILITIES)
        return result


def _as_output(value: Any, io: ModelIO, name: str) -> np.ndarray:
    array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
    spec = io.output(name)
    if spec is not None and spec.dtype.kind in "biuf" and array.dtype != spec.dtype:
        # One datatype per output whatever the runtime (ONNX returns float32, natives float64).
        array = array.astype(spec.dtype)
    return array


def _native_input(io: ModelIO, *, accelerated: bool) -> Callable[[Batch], Any]:
    if io.layout is Layout.MATRIX:
        return _matrix if accelerated else _frame_from_matrix(io)
    if io.layout is Layout.COLUMNS:
        return dict if accelerated else _frame_from_columns(io)
    if len(io.inputs) == 1:
        name = io.inputs[0].name
        return lambda batch: batch[name]
    if not io.inputs:  # no signature: the one input as sent
        return lambda batch: next(iter(batch.values()))
    return dict


def _matrix(batch: Batch) -> np.ndarray:
    return batch[MATRIX_INPUT]


def _frame_from_matrix(io: ModelIO) -> Callable[[Batch], Any]:
    import pandas as pd

    names = io.column_names
    dtypes = {c.name: np.dtype(c.dtype) for c in io.columns}
    uniform = len(set(dtypes.values())) == 1

    def frame(batch: Batch) -> Any:
        matrix = batch[MATRIX_INPUT]
        data = pd.DataFrame(matrix, columns=names, copy=False)
        # Columns keep the types the model was trained with (an int column stays int).
        return data if uniform else data.astype(dtypes)

    return frame


def _frame_from_columns(io: ModelIO) -> Callable[[Batch], Any]:
    import pandas as pd

    categories: Mapping[str, list[Any]] = {
        c.name: list(c.categories or ()) for c in io.columns if c.dtype == "category"
    }
    names = io.column_names

    def frame(batch: Batch) -> Any:
        columns = {
            name: pd.Categorical(batch[name], categories=categories[name])
            if name in categories
            else batch[name]
            for name in names
        }
        return pd.DataFrame(columns)

    return frame
