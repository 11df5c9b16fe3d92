"""Serving a package's verified ONNX graph (``package.acceleration`` makes and checks it).

This module stays free of pandas: the server's cold start and memory depend on it;
DataFrames are recognized without importing pandas."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.layout import MATRIX_INPUT
from modelport.domain.predictor import Batch, ModelPredictor
from modelport.domain.signature import ColumnSchema, Signature
from modelport.errors import InvalidInputError, MissingDependencyError, UnsupportedOperationError
from modelport.flavors.frames import is_frame, is_pandas
from modelport.flavors.onnx_runtime import cast_input, import_onnxruntime, input_dtypes, new_session
from modelport.package.manifest import ACCELERATED_FILE, AccelerationSection, Manifest

logger = logging.getLogger(__name__)

RUNTIME = "onnxruntime"


def column_names(signature: Signature | None) -> list[str] | None:
    """The signature's column names, for a tabular model."""
    if signature is None or not isinstance(signature.inputs, ColumnSchema):
        return None
    return signature.inputs.names


def load_accelerated(directory: Path, manifest: Manifest) -> ModelPredictor | None:
    """A predictor running the package's verified graph; None when there is none or
    onnxruntime is not installed here (the native model then serves)."""
    section = manifest.acceleration
    if section is None or section.status != "verified":
        return None
    if section.file != ACCELERATED_FILE:
        logger.warning("ignoring an accelerated graph at an unexpected path: %r", section.file)
        return None
    try:
        ort = import_onnxruntime("accelerate")
    except MissingDependencyError:
        logger.info("onnxruntime is not installed: the native model serves")
        return None
    try:
        session = new_session(ort, str(directory / ACCELERATED_FILE))
    except Exception as exc:  # onnxruntime raises its own untyped errors
        logger.warning("cannot load %s (%s): the native model serves", ACCELERATED_FILE, exc)
        return None
    return AcceleratedPredictor(session, section, column_names(manifest.signature))


class AcceleratedPredictor:
    """Runs a verified graph with onnxruntime on the batches the server passes (a 2-D
    matrix, a dict of 1-D columns, tensors) or on a DataFrame; predictions come back in
    the native dtype, probabilities as float64."""

    def __init__(
        self, session: Any, section: AccelerationSection, columns: Sequence[str] | None
    ) -> None:
        self._session = session
        self._inputs = input_dtypes(session)
        self._matrix = section.input_layout == "matrix"
        self._per_column = section.input_layout == "columns" or len(self._inputs) > 1
        self._columns = list(columns or ())
        self._positions = {name: index for index, name in enumerate(self._columns)}
        self._label = section.output_label or session.get_outputs()[0].name
        self._probability = section.output_probabilities
        dtype = section.prediction_dtype
        self._dtype = np.dtype(dtype) if dtype is not None else None

    @property
    def supports_proba(self) -> bool:
        """Whether the graph gives class probabilities."""
        return self._probability is not None

    def predict(self, batch: Batch) -> Batch:
        """Labels (classifiers) or values, one per row, in the native model's dtype."""
        (result,) = self._session.run([self._label], self._feed(batch))
        values = np.asarray(result)
        if values.ndim == 2 and values.shape[1] == 1:  # regressors give (rows, 1)
            values = values[:, 0]
        return values if self._dtype is None else values.astype(self._dtype, copy=False)

    def predict_proba(self, batch: Batch) -> Batch:
        """Class probabilities as a float64 (rows, classes) array."""
        if self._probability is None:
            raise UnsupportedOperationError("this model does not give class probabilities")
        (result,) = self._session.run([self._probability], self._feed(batch))
        return np.asarray(result, dtype=np.float64)

    def close(self) -> None:
        """Drop the session; onnxruntime frees it when it is garbage collected."""
        self._session = None

    def _feed(self, batch: Batch) -> dict[str, np.ndarray]:
        if self._per_column:
            return {
                name: cast_input(self._column(batch, name), dtype, name).reshape(-1, 1)
                for name, dtype in self._inputs
            }
        name, dtype = self._inputs[0]
        values = cast_input(self._whole(batch, name), dtype, name)
        return {name: values.reshape(-1, 1) if values.ndim == 1 else values}

    def _whole(self, batch: Batch, name: str) -> Any:
        if is_frame(batch):
            known = self._columns and all(c in batch.columns for c in self._columns)
            return (batch[self._columns] if known else batch).to_numpy()
        if isinstance(batch, Mapping):
            return batch[name] if name in batch else _get(batch, MATRIX_INPUT)
        return batch

    def _column(self, batch: Batch, name: str) -> Any:
        if is_frame(batch) or isinstance(batch, Mapping):
            if name in batch:
                values = batch[name]
                return values.to_numpy() if is_pandas(values) else values
            if not (self._matrix and isinstance(batch, Mapping) and MATRIX_INPUT in batch):
                raise _missing(name)
            batch = batch[MATRIX_INPUT]
        position = self._positions.get(name)
        if not self._matrix or position is None or np.ndim(batch) != 2:
            raise _missing(name)
        return np.asarray(batch)[:, position]  # a matrix split into the graph's columns


def _get(batch: Mapping[str, Any], name: str) -> Any:
    if name not in batch:
        raise _missing(name)
    return batch[name]


def _missing(name: str) -> InvalidInputError:
    return InvalidInputError(f"missing input {name!r}", field=name, received="no such input")
