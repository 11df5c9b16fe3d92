"""MLflow scoring answers: ``{"predictions": ...}`` as MLflow's scoring server writes it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from modelport.errors import ModelExecutionError


def encode_predictions(predictions: np.ndarray | Mapping[str, np.ndarray]) -> bytes:
    """``{"predictions": [...]}``; named outputs become one ``{name: value}`` record per row,
    as MLflow writes a DataFrame (``orient="records"``). NaN is written as null.

    Raises ``ModelExecutionError`` when the predictions cannot be written as JSON (outputs
    with different row counts, values of an unknown type).
    """
    payload: Any = predictions
    if isinstance(predictions, Mapping):
        payload = _output_records(predictions)
    try:
        return orjson.dumps(
            {"predictions": payload}, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY
        )
    except orjson.JSONEncodeError as error:
        raise ModelExecutionError(
            f"the model's predictions cannot be written as JSON: {error}"
        ) from error


def _output_records(outputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    names = list(outputs)
    columns = [_rows_of(np.atleast_1d(np.asarray(outputs[name]))) for name in names]
    counts = {len(column) for column in columns}
    if len(counts) > 1:
        shown = ", ".join(
            f"{name}: {len(column)}" for name, column in zip(names, columns, strict=True)
        )
        raise ModelExecutionError(f"the model's outputs have different numbers of rows ({shown})")
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _rows_of(array: np.ndarray) -> list[Any]:
    # tolist() is fastest, but turns datetimes into integers; orjson writes numpy's own
    # datetime scalars as ISO 8601 text.
    return list(array) if array.dtype.kind in "Mm" else array.tolist()


def _jsonable(value: Any) -> Any:
    """What orjson cannot write by itself: object, text and non-contiguous arrays, numpy
    scalars it does not know, and bytes (base64, as MLflow writes binary values)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
