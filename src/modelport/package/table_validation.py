"""Validating a table against a column schema (pandas): match columns by name, fill
optional ones, and convert each column by the rules in ``modelport.domain.signature``.

Columns are matched by their labels written as text: a signature stores names as text,
so the column ``"0"`` of a schema inferred from ``pd.DataFrame(X)`` (whose default labels
are the integers 0, 1, ...) is the frame's column ``0``. Two labels that read the same
as text (``0`` and ``"0"``) are refused as ambiguous.

Imported only when a table is really checked (``batch_validation`` loads it lazily), so
that serving tensors never imports pandas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelport.domain.signature import NUMERIC_DTYPES, ColumnSchema, ColumnSpec, cast_numeric
from modelport.errors import InvalidInputError


def validate_table(schema: ColumnSchema, batch: Any) -> pd.DataFrame:
    """Return ``batch`` as a DataFrame with the schema's columns, order and types."""
    frame = _text_labels(_as_frame(batch, schema))
    if len(frame) == 0:
        raise InvalidInputError("the batch has no rows", expected="at least one row")
    missing = [c for c in schema.columns if c.required and c.name not in frame.columns]
    if missing:
        names = ", ".join(f"{c.name!r} ({c.dtype})" for c in missing)
        raise InvalidInputError(
            f"missing required column{'s' if len(missing) > 1 else ''} {names}",
            field=missing[0].name,
            expected=missing[0].dtype,
            received="no such column",
        )
    columns = {c.name: _coerce_column(frame, c) for c in schema.columns}
    return pd.DataFrame(columns, index=frame.index)


def _as_frame(batch: Any, schema: ColumnSchema) -> pd.DataFrame:
    if isinstance(batch, pd.DataFrame):
        return batch
    if isinstance(batch, pd.Series):
        return batch.to_frame()
    if isinstance(batch, Mapping):
        if all(np.ndim(v) == 0 for v in batch.values()):
            return pd.DataFrame([dict(batch)])
        return _frame_or_error(lambda: pd.DataFrame(dict(batch)))
    if isinstance(batch, list | tuple) and batch and all(isinstance(r, Mapping) for r in batch):
        return pd.DataFrame(list(batch))
    if isinstance(batch, np.ndarray | list | tuple):
        return _positional_frame(
            np.asarray(batch, dtype=object) if _ragged(batch) else batch, schema
        )
    raise InvalidInputError(
        f"expected a table with the columns {schema.names}, got a {type(batch).__name__}",
        expected="DataFrame, records, dict of columns or 2-D array",
        received=type(batch).__name__,
    )


def _text_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its column labels as text (a shallow copy when some are not)."""
    labels = frame.columns.tolist()
    if all(isinstance(label, str) for label in labels):
        return frame
    names = [str(label) for label in labels]
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        clashing = ", ".join(repr(label) for label in labels if str(label) == twice)
        raise InvalidInputError(
            f"the columns {clashing} have the same name once written as text; "
            "give the table's columns distinct names",
            field=twice,
            expected="distinct column names",
            received=clashing,
        )
    relabelled = frame.copy(deep=False)
    relabelled.columns = names
    return relabelled


def _ragged(batch: Any) -> bool:
    if isinstance(batch, np.ndarray):
        return False
    lengths = {len(row) if isinstance(row, list | tuple) else -1 for row in batch}
    return len(lengths) > 1


def _frame_or_error(build: Any) -> pd.DataFrame:
    try:
        frame: pd.DataFrame = build()
    except ValueError as exc:
        raise InvalidInputError(f"cannot read the batch as a table: {exc}") from None
    return frame


def _positional_frame(batch: Any, schema: ColumnSchema) -> pd.DataFrame:
    """A 2-D array or list of rows: columns are taken in the signature's order."""
    rows = list(batch) if not isinstance(batch, np.ndarray) else None
    width = len(schema.columns)
    if rows is not None:
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, list | tuple)), None)
        if bad is not None or any(len(r) != width for r in rows):
            raise InvalidInputError(
                f"each row must have {width} values, in the order {schema.names}",
                expected=f"{width} values per row",
                received="rows of other lengths",
            )
        return pd.DataFrame(rows, columns=schema.names)
    assert isinstance(batch, np.ndarray)
    if batch.ndim != 2 or batch.shape[1] != width:
        raise InvalidInputError(
            f"a 2-D array must have {width} columns, in the order {schema.names}",
            expected=f"shape (-1, {width})",
            received=f"shape {tuple(batch.shape)}",
        )
    return pd.DataFrame(batch, columns=schema.names)


def _coerce_column(frame: pd.DataFrame, spec: ColumnSpec) -> pd.Series:
    if spec.name not in frame.columns:
        return _missing_column(spec, len(frame), frame.index)
    series = frame[spec.name]
    if isinstance(series, pd.DataFrame):
        raise InvalidInputError(
            f"column {spec.name!r} appears more than once", field=spec.name, expected="one column"
        )
    missing = int(series.isna().sum())
    if missing and not spec.nullable:
        raise InvalidInputError(
            f"column {spec.name!r} has {missing} missing value{'s' if missing > 1 else ''}, "
            "but the signature does not allow missing values in it",
            field=spec.name,
            expected=f"{spec.dtype}, no missing values",
            received=f"{missing} missing",
        )
    return _CONVERTERS.get(spec.dtype, _to_numeric)(series, spec)


def _missing_column(spec: ColumnSpec, rows: int, index: pd.Index) -> pd.Series:
    if spec.dtype in NUMERIC_DTYPES:
        return pd.Series(np.full(rows, np.nan), index=index, name=spec.name)
    if spec.dtype == "category":
        categorical = pd.Categorical([None] * rows, categories=list(spec.categories or ()))
        return pd.Series(categorical, index=index, name=spec.name)
    return pd.Series([None] * rows, index=index, name=spec.name, dtype=object)


def _column_error(spec: ColumnSpec, received: str, detail: str = "") -> InvalidInputError:
    message = f"column {spec.name!r} expects {spec.dtype}, got {received}"
    return InvalidInputError(
        f"{message}{': ' + detail if detail else ''}",
        field=spec.name,
        expected=spec.dtype,
        received=received,
    )


def _received(series: pd.Series) -> str:
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        names = {"string": "text", "integer": "int64", "floating": "float64"}
        return str(names.get(inferred, inferred))
    return str(series.dtype)


def _example(values: pd.Series) -> str:
    return f"e.g. {values.iloc[0]!r}" if len(values) else ""


def _to_numeric(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    values = _numeric_values(series, spec)
    converted = cast_numeric(values, spec.dtype, spec.name, nullable=spec.nullable)
    return pd.Series(converted, index=series.index, name=spec.name)


def _numeric_values(series: pd.Series, spec: ColumnSpec) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        raise _column_error(spec, "bool")
    if pd.api.types.is_numeric_dtype(series.dtype):
        if hasattr(series.dtype, "numpy_dtype"):  # pandas nullable Int64/Float64
            return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan))
        return np.asarray(series.to_numpy())
    non_null = series.dropna()
    not_numbers = [
        v
        for v in non_null
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number)
    ]
    if not_numbers:
        raise _column_error(spec, _received(series), f"e.g. {not_numbers[0]!r}")
    if series.isna().any():
        return np.asarray(pd.to_numeric(series).to_numpy(dtype="float64"))
    return np.asarray(non_null.tolist())


def _to_bool(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series
    non_null = series.dropna()
    if all(isinstance(v, bool | np.bool_) for v in non_null):
        return series if series.isna().any() else series.astype(bool)
    raise _column_error(spec, _received(series), _example(non_null))


def _to_string(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    non_null = series.dropna()
    not_text = non_null[[not isinstance(v, str) for v in non_null]]
    if len(not_text):
        raise _column_error(spec, _received(series), _example(not_text))
    return series


def _to_datetime(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series
    try:
        return pd.to_datetime(series, format="ISO8601")
    except (ValueError, TypeError):
        raise _column_error(spec, _received(series), "values must be ISO 8601 dates") from None


def _to_category(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    categories = list(spec.categories or ())
    non_null = series.dropna()
    unknown = non_null[~non_null.isin(categories)]
    if len(unknown):
        shown = ", ".join(repr(v) for v in pd.unique(unknown)[:5])
        raise InvalidInputError(
            f"column {spec.name!r} has values outside its categories: {shown}",
            field=spec.name,
            expected=f"one of {categories[:20]}",
            received=shown,
        )
    return pd.Series(
        pd.Categorical(series, categories=categories), index=series.index, name=spec.name
    )


_CONVERTERS = {
    "bool": _to_bool,
    "string": _to_string,
    "datetime": _to_datetime,
    "category": _to_category,
}
