"""Turning decoded request arrays into the batch a served model runs on.

Typed inputs (V2 tensors, which declare a datatype) must have the datatype the model
advertises, or one that converts to it without loss (INT32 -> INT64, FP32 -> FP64,
integers -> FP64 when exact); anything else is refused. Untyped inputs (JSON numbers
and strings from MLflow's formats) follow the signature's conversion rules
(``modelport.domain.signature``). NaN is accepted only in nullable inputs and Inf
only when the server allows non-finite values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from modelport.domain.signature import ColumnSpec, cast_numeric
from modelport.errors import InvalidInputError
from modelport.serving.interface import MATRIX_INPUT, IOSpec, Layout, ModelIO

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class Bound:
    """A request's inputs in the model's batch layout, and how many rows they hold."""

    batch: Batch
    rows: int


@dataclass(frozen=True)
class Tensor:
    """A decoded input: its array and, when the protocol declares one, its V2 datatype."""

    array: np.ndarray
    datatype: str | None = None


class InputBinder:
    """Checks and converts one model's inputs."""

    def __init__(self, io: ModelIO, *, allow_non_finite: bool = False) -> None:
        self._io = io
        self._allow_non_finite = allow_non_finite
        self._by_name = {spec.name: spec for spec in io.inputs}
        self._columns = {column.name: column for column in io.columns}

    # ------------------------------------------------------------------ entry points

    def bind_named(self, tensors: Mapping[str, Tensor]) -> Bound:
        """Named inputs: V2 tensors, or MLflow's ``{"inputs": {name: values}}``."""
        if not self._io.inputs:  # no signature: one input, passed as it is
            return self._passthrough(tensors)
        unknown = sorted(set(tensors) - set(self._by_name) - set(self._columns))
        if unknown:
            raise InvalidInputError(
                f"unknown input {unknown[0]!r}; the model takes {self._expected()}",
                field=unknown[0],
                expected=self._expected(),
                received=unknown[0],
            )
        if self._io.layout is Layout.MATRIX and MATRIX_INPUT not in tensors:
            return self._matrix_from_columns(tensors)
        if self._io.layout is Layout.MATRIX:
            return self._matrix(tensors[MATRIX_INPUT])
        return self._named(tensors)

    def bind_table(self, columns: Sequence[str] | None, values: np.ndarray) -> Bound:
        """A table of rows (MLflow's dataframe formats, CSV); ``columns`` None means the
        values are in the signature's column order."""
        values = _two_dimensional(values)
        names = list(columns) if columns is not None else self._positional_names(values)
        if len(names) != values.shape[1]:
            raise InvalidInputError(
                f"the table has {len(names)} column names but rows of {values.shape[1]} values"
            )
        if len(set(names)) != len(names):
            raise InvalidInputError("the table names a column more than once")
        fast = self._numeric_matrix(names, values)
        if fast is not None:
            return fast
        return self.bind_named({name: Tensor(values[:, j]) for j, name in enumerate(names)})

    def _numeric_matrix(self, names: Sequence[str], values: np.ndarray) -> Bound | None:
        """A numeric table for a one-matrix model, converted in one piece instead of column
        by column; None when it does not apply or fails (the column path then names the
        column at fault)."""
        if self._io.layout is not Layout.MATRIX or values.dtype.kind not in "iuf":
            return None
        if values.shape[0] == 0:
            return None  # the column path says what is wrong with an empty table
        expected = self._io.column_names
        if len(names) != len(expected) or set(names) != set(expected):
            return None
        if list(names) != list(expected):
            position = {name: j for j, name in enumerate(names)}
            values = values[:, [position[name] for name in expected]]
        try:
            return self._matrix(Tensor(values))
        except InvalidInputError:
            return None

    def bind_array(self, values: np.ndarray) -> Bound:
        """One unnamed array (MLflow's ``instances``/``inputs`` lists)."""
        if self._io.layout is Layout.TENSORS:
            if len(self._io.inputs) > 1:
                raise InvalidInputError(
                    f"the model takes several inputs ({self._expected()}); name them"
                )
            name = self._io.inputs[0].name if self._io.inputs else "input"
            return self.bind_named({name: Tensor(values)})
        return self.bind_table(None, values)

    # ------------------------------------------------------------------- layouts

    def _expected(self) -> str:
        names = self._io.input_names
        if self._io.layout is Layout.MATRIX:
            names = [*names, f"or the columns {self._io.column_names}"]
        return ", ".join(repr(n) if not n.startswith("or ") else n for n in names)

    def _positional_names(self, values: np.ndarray) -> list[str]:
        names = self._io.column_names or self._io.input_names
        if values.shape[1] != len(names):
            raise InvalidInputError(
                f"rows must have {len(names)} values, in the order {names}; got {values.shape[1]}",
                expected=f"{len(names)} values per row",
                received=f"{values.shape[1]} values per row",
            )
        return names

    def _passthrough(self, tensors: Mapping[str, Tensor]) -> Bound:
        if len(tensors) != 1:
            raise InvalidInputError("the model has no signature; send exactly one input")
        ((name, tensor),) = tensors.items()
        array = tensor.array
        return Bound({name: array}, _rows(array, name))

    def _matrix(self, tensor: Tensor) -> Bound:
        spec = self._by_name[MATRIX_INPUT]
        array = tensor.array
        if array.ndim != 2 or array.shape[1] != spec.shape[1]:
            raise InvalidInputError(
                f"input {MATRIX_INPUT!r} expects shape {list(spec.shape)}, got {list(array.shape)}",
                field=MATRIX_INPUT,
                expected=f"shape {list(spec.shape)}",
                received=f"shape {list(array.shape)}",
            )
        array = self._convert(MATRIX_INPUT, spec, tensor)
        return Bound({MATRIX_INPUT: array}, array.shape[0])

    def _matrix_from_columns(self, tensors: Mapping[str, Tensor]) -> Bound:
        spec = self._by_name[MATRIX_INPUT]
        missing = [name for name in self._io.column_names if name not in tensors]
        if missing:
            raise InvalidInputError(
                f"missing input {missing[0]!r}; the model takes {self._expected()}",
                field=missing[0],
                expected=spec.datatype,
                received="no such input",
            )
        parts = {name: self._column_values(name, tensors[name]) for name in self._io.column_names}
        rows = _same_rows(parts)
        converted = [
            self._convert(
                name, IOSpec(name, spec.datatype, (-1,), spec.nullable), tensors[name], part
            )
            for name, part in parts.items()
        ]
        return Bound({MATRIX_INPUT: np.column_stack(converted)}, rows)

    def _named(self, tensors: Mapping[str, Tensor]) -> Bound:
        batch: Batch = {}
        for spec in self._io.inputs:
            column = self._columns.get(spec.name)
            if spec.name not in tensors:
                if column is not None and not column.required:
                    continue  # filled once the row count is known
                raise InvalidInputError(
                    f"missing input {spec.name!r}; the model takes {self._expected()}",
                    field=spec.name,
                    expected=spec.datatype,
                    received="no such input",
                )
            tensor = tensors[spec.name]
            values = self._column_values(spec.name, tensor) if column else tensor.array
            if column is None:
                _check_shape(spec, values)
            batch[spec.name] = self._convert(spec.name, spec, tensor, values, column)
        rows = _same_rows(batch)
        for column in self._io.columns:
            batch.setdefault(column.name, _missing_column(column, rows))
        return Bound(batch, rows)

    def _column_values(self, name: str, tensor: Tensor) -> np.ndarray:
        array = tensor.array
        if array.ndim == 2 and array.shape[1] == 1:
            return array[:, 0]
        if array.ndim != 1:
            raise InvalidInputError(
                f"input {name!r} is one column: expected shape [-1] or [-1, 1], "
                f"got {list(array.shape)}",
                field=name,
                expected="shape [-1]",
                received=f"shape {list(array.shape)}",
            )
        return array

    # ---------------------------------------------------------------- conversion

    def _convert(
        self,
        name: str,
        spec: IOSpec,
        tensor: Tensor,
        values: np.ndarray | None = None,
        column: ColumnSpec | None = None,
    ) -> np.ndarray:
        values = tensor.array if values is None else values
        if tensor.datatype is not None and tensor.datatype != spec.datatype:
            values = _widen(name, spec, tensor.datatype, values)
        kind = column.dtype if column is not None else spec.dtype.name
        if kind in ("string", "object"):
            return _text(name, values)
        if kind == "category":
            return _category(name, values, column)
        if kind == "datetime":
            return _datetime(name, values)
        if kind == "bool":
            return _boolean(name, values)
        converted = cast_numeric(_numeric(name, values), spec.dtype.name, name, nullable=True)
        self._check_finite(name, spec, converted)
        return converted

    def _check_finite(self, name: str, spec: IOSpec, values: np.ndarray) -> None:
        if values.dtype.kind != "f" or self._allow_non_finite:
            return
        finite = np.isfinite(values)
        if finite.all():
            return
        if spec.nullable and not np.isinf(values).any():
            return  # NaN marks a missing value where the signature allows it
        raise InvalidInputError(
            f"non-finite value in input {name!r} (NaN or Inf); the model accepts finite numbers",
            field=name,
            expected="finite numbers",
            received="NaN or Inf",
        )


# ---------------------------------------------------------------------- helpers

_LOSSLESS = {
    "FP64": ("FP32", "FP16", "INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"),
    "FP32": ("FP16", "INT8", "INT16", "UINT8", "UINT16"),
    "INT64": ("INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"),
    "INT32": ("INT8", "INT16", "UINT8", "UINT16"),
    "INT16": ("INT8", "UINT8"),
    "UINT64": ("UINT8", "UINT16", "UINT32"),
    "UINT32": ("UINT8", "UINT16"),
    "UINT16": ("UINT8",),
}


def _widen(name: str, spec: IOSpec, datatype: str, values: np.ndarray) -> np.ndarray:
    if datatype in _LOSSLESS.get(spec.datatype, ()):
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


def _two_dimensional(values: np.ndarray) -> np.ndarray:
    if values.ndim == 1:
        return values.reshape(1, -1) if values.size else values.reshape(0, 0)
    if values.ndim != 2:
        raise InvalidInputError(
            f"expected a table of rows, got an array of shape {list(values.shape)}"
        )
    return values


def _rows(array: np.ndarray, name: str) -> int:
    if array.ndim == 0:
        raise InvalidInputError(f"input {name!r} must have a batch dimension", field=name)
    return int(array.shape[0])


def _same_rows(batch: Mapping[str, np.ndarray]) -> int:
    counts = {name: _rows(array, name) for name, array in batch.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise InvalidInputError(f"inputs have different numbers of rows ({shown})")
    rows = next(iter(counts.values()), 0)
    if rows == 0:
        raise InvalidInputError("the request has no rows", expected="at least one row")
    return rows


def _check_shape(spec: IOSpec, values: np.ndarray) -> None:
    fits = values.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, values.shape, strict=True)
    )
    if not fits:
        raise InvalidInputError(
            f"input {spec.name!r} expects shape {list(spec.shape)} (-1 is any size), "
            f"got {list(values.shape)}",
            field=spec.name,
            expected=f"shape {list(spec.shape)}",
            received=f"shape {list(values.shape)}",
        )


def _numeric(name: str, values: np.ndarray) -> np.ndarray:
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


def _text(name: str, values: np.ndarray) -> np.ndarray:
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


def _category(name: str, values: np.ndarray, column: ColumnSpec | None) -> np.ndarray:
    allowed = set(column.categories or ()) if column is not None else set()
    text = values if values.dtype.kind != "O" else _maybe_text(values)
    unknown = [v for v in text.tolist() if v is not None and v not in allowed]
    if unknown:
        raise InvalidInputError(
            f"input {name!r} has values outside its categories: {unknown[0]!r}",
            field=name,
            expected=f"one of {sorted(map(str, allowed))[:20]}",
            received=repr(unknown[0]),
        )
    return text


def _maybe_text(values: np.ndarray) -> np.ndarray:
    return np.array(
        [v.decode("utf-8") if isinstance(v, bytes) else v for v in values], dtype=object
    )


def _datetime(name: str, values: np.ndarray) -> np.ndarray:
    try:
        return np.array(_text(name, values).tolist(), dtype="datetime64[ns]")
    except ValueError:
        raise _kind_error(name, "ISO 8601 dates", "text that is not a date") from None


def _boolean(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "b":
        return values
    items = values.tolist()
    if all(isinstance(v, bool) or v is None for v in items):
        return np.array(items, dtype=object if None in items else bool)
    raise _kind_error(
        name, "true or false", repr(next(v for v in items if not isinstance(v, bool)))
    )


def _missing_column(column: ColumnSpec, rows: int) -> np.ndarray:
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
