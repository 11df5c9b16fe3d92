"""Converting one decoded input's values to the type its signature declares.

Each function takes the input's name (for the error message) and its values, and
returns them converted or raises ``InvalidInputError`` naming the input, what it
expects and what came.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modelport.domain.layout import shape_fits
from modelport.domain.signature import ColumnSpec
from modelport.errors import InvalidInputError
from modelport.serving.interface import IOSpec

LOSSLESS = {
    "FP64": ("FP32", "FP16", "INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"),
    "FP32": ("FP16", "INT8", "INT16", "UINT8", "UINT16"),
    "INT64": ("INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"),
    "INT32": ("INT8", "INT16", "UINT8", "UINT16"),
    "INT16": ("INT8", "UINT8"),
    "UINT64": ("UINT8", "UINT16", "UINT32"),
    "UINT32": ("UINT8", "UINT16"),
    "UINT16": ("UINT8",),
}


def widen(name: str, spec: IOSpec, datatype: str, values: np.ndarray) -> np.ndarray:
    """Values of a typed input sent as ``datatype``, widened to the model's datatype when
    that loses nothing; anything else is refused."""
    if datatype in LOSSLESS.get(spec.datatype, ()):
        return values.astype(spec.dtype)
    if spec.datatype == "FP64" and datatype in ("INT64", "UINT64"):
        return values  # cast_numeric checks these convert exactly
    raise InvalidInputError(
        f"input {name!r} has datatype {spec.datatype}; got {datatype}, which does not convert "
        "to it without loss",
        field=name,
        expected=spec.datatype,
        received=datatype,
    )


def two_dimensional(values: np.ndarray) -> np.ndarray:
    """A table's values as rows x columns (one row when a flat list came)."""
    if values.ndim == 1:
        return values.reshape(1, -1) if values.size else values.reshape(0, 0)
    if values.ndim != 2:
        raise InvalidInputError(
            f"expected a table of rows, got an array of shape {list(values.shape)}"
        )
    return values


def row_count(array: np.ndarray, name: str) -> int:
    """The number of rows (the leading dimension) of an input."""
    if array.ndim == 0:
        raise InvalidInputError(f"input {name!r} must have a batch dimension", field=name)
    return int(array.shape[0])


def same_rows(batch: Mapping[str, np.ndarray]) -> int:
    """The row count every input shares; refuses inputs of different lengths or no rows."""
    counts = {name: row_count(array, name) for name, array in batch.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise InvalidInputError(f"inputs have different numbers of rows ({shown})")
    rows = next(iter(counts.values()), 0)
    if rows == 0:
        raise InvalidInputError("the request has no rows", expected="at least one row")
    return rows


def check_shape(spec: IOSpec, values: np.ndarray) -> None:
    """Refuses values whose shape does not fit the input's declared shape (-1 is any size)."""
    if not shape_fits(spec.shape, values.shape):
        raise InvalidInputError(
            f"input {spec.name!r} expects shape {list(spec.shape)} (-1 is any size), "
            f"got {list(values.shape)}",
            field=spec.name,
            expected=f"shape {list(spec.shape)}",
            received=f"shape {list(values.shape)}",
        )


def numeric(name: str, values: np.ndarray) -> np.ndarray:
    """Untyped values (JSON numbers, None for missing) as a numeric array."""
    if values.dtype.kind in "iuf":
        return values
    if values.dtype.kind == "b":
        raise _kind_error(name, "a number", "bool")
    items = values.ravel().tolist()
    bad = next(
        (
            v
            for v in items
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float))
        ),
        None,
    )
    if bad is not None:
        raise _kind_error(name, "a number", repr(bad))
    as_float = [float("nan") if v is None else v for v in items]
    has_float = any(isinstance(v, float) for v in as_float)
    return np.array(as_float, dtype="float64" if has_float else "int64").reshape(values.shape)


def text(name: str, values: np.ndarray) -> np.ndarray:
    """Values as Python strings (UTF-8 bytes decoded), None kept for missing."""
    out = np.empty(values.size, dtype=object)
    for i, value in enumerate(values.ravel()):
        out[i] = _decoded(name, value)
    return out.reshape(values.shape)


def _decoded(name: str, value: object) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _kind_error(name, "UTF-8 text", "bytes that are not UTF-8") from None
    if value is not None and not isinstance(value, str):
        raise _kind_error(name, "text", repr(value))
    return value


def category(name: str, values: np.ndarray, column: ColumnSpec | None) -> np.ndarray:
    """Values of a categorical column, refusing labels outside its categories."""
    allowed = set(column.categories or ()) if column is not None else set()
    labels = values if values.dtype.kind != "O" else _maybe_text(values)
    unknown = [v for v in labels.tolist() if v is not None and v not in allowed]
    if unknown:
        raise InvalidInputError(
            f"input {name!r} has values outside its categories: {unknown[0]!r}",
            field=name,
            expected=f"one of {sorted(map(str, allowed))[:20]}",
            received=repr(unknown[0]),
        )
    return labels


def _maybe_text(values: np.ndarray) -> np.ndarray:
    return np.array(
        [v.decode("utf-8") if isinstance(v, bytes) else v for v in values], dtype=object
    )


def dates(name: str, values: np.ndarray) -> np.ndarray:
    """ISO 8601 text as datetime64 values."""
    try:
        return np.array(text(name, values).tolist(), dtype="datetime64[ns]")
    except ValueError:
        raise _kind_error(name, "ISO 8601 dates", "text that is not a date") from None


def boolean(name: str, values: np.ndarray) -> np.ndarray:
    """true/false values as a bool array (object when some are missing)."""
    if values.dtype.kind == "b":
        return values
    items = values.tolist()
    if all(isinstance(v, bool) or v is None for v in items):
        return np.array(items, dtype=object if None in items else bool)
    raise _kind_error(
        name, "true or false", repr(next(v for v in items if not isinstance(v, bool)))
    )


def missing_column(column: ColumnSpec, rows: int) -> np.ndarray:
    """An optional column the request left out: missing values for every row."""
    if column.dtype.startswith(("int", "uint", "float")):
        return np.full(rows, np.nan)
    return np.full(rows, None, dtype=object)


def _kind_error(name: str, expected: str, received: str) -> InvalidInputError:
    return InvalidInputError(
        f"input {name!r} expects {expected}, got {received}",
        field=name,
        expected=expected,
        received=received,
    )
