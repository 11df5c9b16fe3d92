"""Turning decoded request arrays into the batch a served model runs on.

Typed inputs (V2 tensors, which declare a datatype) must have the datatype the model
advertises, or one that converts to it without loss (INT32 -> INT64, FP32 -> FP64,
integers -> FP64 when exact); anything else is refused. Untyped inputs (JSON numbers
and strings from MLflow's formats) follow the signature's conversion rules
(``modelport.domain.signature``). NaN is accepted only in nullable inputs and Inf
only when the server allows non-finite values.

A request's inputs arrive in one of three shapes (``RequestInputs``): named tensors (V2,
MLflow's ``{"inputs": {name: values}}``), a table of rows (MLflow's dataframe formats,
CSV) or one unnamed array (MLflow's ``instances``/``inputs`` lists). ``bind`` takes any
of them; the conversions of single values live in ``serving.conversion``.

A model with one tensor input of shape ``[-1, width]`` (what registering from a numpy
array gives) takes columns by position, as MLflow's scoring server does for a model with
one unnamed tensor: a table of ``width`` columns, whatever they are called, is that
tensor's rows, and so are ``width`` one-column tensors (V2 inputs, or MLflow's
``{"inputs": {name: values}}``) whose names are not the tensor's, taken in the order
sent. Any other count is refused with a message naming the width. A one-column table
fills a 1-D tensor ``[-1]`` the same way. Whether a model maps columns by position is
decided once per model (``InputBinder.__init__``), not per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from modelport.domain.layout import MATRIX_INPUT, shape_fits
from modelport.domain.signature import ColumnSpec, cast_numeric
from modelport.errors import InvalidInputError
from modelport.serving import conversion
from modelport.serving.interface import IOSpec, Layout, ModelIO

Batch = dict[str, np.ndarray]


@dataclass(slots=True)  # not frozen: see serving.target
class Bound:
    """A request's inputs in the model's batch layout, and how many rows they hold."""

    batch: Batch
    rows: int


@dataclass(slots=True)  # not frozen: see serving.target
class Tensor:
    """A decoded input: its array and, when the protocol declares one, its V2 datatype."""

    array: np.ndarray
    datatype: str | None = None


@dataclass(slots=True)  # not frozen: see serving.target
class NamedInputs:
    """Inputs by name: V2 tensors, or MLflow's ``{"inputs": {name: values}}``."""

    tensors: Mapping[str, Tensor]


@dataclass(slots=True)  # not frozen: see serving.target
class TableInputs:
    """A table of rows; ``columns`` None means the values are in the signature's order."""

    columns: Sequence[str] | None
    values: np.ndarray


@dataclass(slots=True)  # not frozen: see serving.target
class ArrayInputs:
    """One unnamed array (MLflow's ``instances``/``inputs`` lists)."""

    array: np.ndarray


RequestInputs = NamedInputs | TableInputs | ArrayInputs


class InputBinder:
    """Checks and converts one model's inputs."""

    def __init__(self, io: ModelIO, *, allow_non_finite: bool = False) -> None:
        self._io = io
        self._allow_non_finite = allow_non_finite
        self._by_name = {spec.name: spec for spec in io.inputs}
        self._columns = {column.name: column for column in io.columns}
        self._column_names = io.column_names
        self._column_set = frozenset(self._column_names)
        self._matrix_spec = self._by_name.get(MATRIX_INPUT) if io.layout is Layout.MATRIX else None
        # The one tensor a table fills by position and, when it is 2-D, the spec each of
        # its columns is converted with when they come as separate inputs.
        self._tensor = _positional_tensor(io)
        tensor = self._tensor
        self._tensor_column = (
            IOSpec(tensor.name, tensor.datatype, (-1,), tensor.nullable)
            if tensor is not None and len(tensor.shape) == 2
            else None
        )

    # ------------------------------------------------------------------ entry points

    def bind(self, inputs: RequestInputs) -> Bound:
        """A request's inputs, whichever shape they came in."""
        if isinstance(inputs, TableInputs):
            return self.bind_table(inputs.columns, inputs.values)
        if isinstance(inputs, NamedInputs):
            return self.bind_named(inputs.tensors)
        return self.bind_array(inputs.array)

    def bind_named(self, tensors: Mapping[str, Tensor]) -> Bound:
        """Named inputs: V2 tensors, or MLflow's ``{"inputs": {name: values}}``."""
        if not self._io.inputs:  # no signature: one input, passed as it is
            return self._passthrough(tensors)
        if self._tensor_column is not None and self._tensor_column.name not in tensors:
            return self._tensor_from_columns(tensors)
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
        if self._tensor is not None:
            return self._table_as_tensor(values)
        fast = self._table_as_is(columns, values)
        if fast is not None:
            return fast
        values = conversion.two_dimensional(values)
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

    def _table_as_is(self, columns: Sequence[str] | None, values: np.ndarray) -> Bound | None:
        """The common request in one step: a table already in the matrix's dtype and
        column order. None when it is anything else, or has a value to refuse (the
        general path then says which column holds it)."""
        spec = self._matrix_spec
        if spec is None or values.ndim != 2 or values.dtype != spec.dtype:
            return None
        if not values.shape[0] or values.shape[1] != len(self._column_names):
            return None
        if columns is not None and list(columns) != self._column_names:
            return None
        try:
            self._check_finite(MATRIX_INPUT, spec, values)
        except InvalidInputError:
            return None
        return Bound({MATRIX_INPUT: values}, values.shape[0])

    def _numeric_matrix(self, names: Sequence[str], values: np.ndarray) -> Bound | None:
        """A numeric table for a one-matrix model, converted in one piece instead of column
        by column; None when it does not apply or fails (the column path then names the
        column at fault)."""
        if self._io.layout is not Layout.MATRIX or values.dtype.kind not in "iuf":
            return None
        if values.shape[0] == 0:
            return None  # the column path says what is wrong with an empty table
        expected = self._column_names
        if names != expected:  # a list compare: the common case, columns in order
            if len(names) != len(expected) or self._column_set.symmetric_difference(names):
                return None
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

    def _table_as_tensor(self, values: np.ndarray) -> Bound:
        """A table for a one-tensor model: its columns by position, whatever their names."""
        spec = self._tensor
        assert spec is not None
        values = conversion.two_dimensional(values)
        width = values.shape[1]
        if len(spec.shape) == 1:  # a 1-D tensor is one column
            if width != 1:
                raise self._width_error(f"a table of {width} columns")
            values = values[:, 0]
        elif not shape_fits(spec.shape[1:], (width,)):
            raise self._width_error(f"a table of {width} columns")
        rows = values.shape[0]
        if not rows:
            raise InvalidInputError("the request has no rows", expected="at least one row")
        return Bound({spec.name: self._convert(spec.name, spec, Tensor(values))}, rows)

    def _tensor_from_columns(self, tensors: Mapping[str, Tensor]) -> Bound:
        """One-column tensors for a one-tensor model, stacked in the order they came."""
        spec, column = self._tensor, self._tensor_column
        assert spec is not None
        assert column is not None
        if not shape_fits(spec.shape[1:], (len(tensors),)):
            shown = ", ".join(map(repr, list(tensors)[:10]))
            raise self._width_error(f"{len(tensors)} inputs ({shown})")
        parts = {name: self._column_values(name, tensor) for name, tensor in tensors.items()}
        rows = conversion.same_rows(parts)
        converted = [
            self._convert(name, column, tensors[name], part) for name, part in parts.items()
        ]
        return Bound({spec.name: np.column_stack(converted)}, rows)

    def _width_error(self, sent: str) -> InvalidInputError:
        """The 400 for columns that do not fill the positional tensor: what it takes, in
        which forms, and what came."""
        spec = self._tensor
        assert spec is not None
        width = spec.shape[1] if len(spec.shape) == 2 else 1
        forms = (
            f"a table of {width} columns or {width} one-column inputs (taken in order, "
            f"whatever their names), or the tensor {spec.name!r} itself"
            if len(spec.shape) == 2
            else "a table of one column"
        )
        return InvalidInputError(
            f"the model takes one tensor {spec.name!r} of shape {list(spec.shape)}, "
            f"{width} value{'s' if width != 1 else ''} per row: send {forms}; got {sent}",
            field=spec.name,
            expected=f"{width} values per row",
            received=sent,
        )

    def _passthrough(self, tensors: Mapping[str, Tensor]) -> Bound:
        if len(tensors) != 1:
            raise InvalidInputError("the model has no signature; send exactly one input")
        ((name, tensor),) = tensors.items()
        array = tensor.array
        return Bound({name: array}, conversion.row_count(array, name))

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
        rows = conversion.same_rows(parts)
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
                conversion.check_shape(spec, values)
            batch[spec.name] = self._convert(spec.name, spec, tensor, values, column)
        rows = conversion.same_rows(batch)
        for column in self._io.columns:
            batch.setdefault(column.name, conversion.missing_column(column, rows))
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
            values = conversion.widen(name, spec, tensor.datatype, values)
        kind = column.dtype if column is not None else spec.dtype_name
        if kind in ("string", "object"):
            return conversion.text(name, values)
        if kind == "category":
            return conversion.category(name, values, column)
        if kind == "datetime":
            return conversion.dates(name, values)
        if kind == "bool":
            return conversion.boolean(name, values)
        if values.dtype == spec.dtype:  # the common case: nothing to convert
            converted = values
        else:
            numbers = conversion.numeric(name, values)
            converted = cast_numeric(numbers, spec.dtype_name, name, nullable=True)
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


def _positional_tensor(io: ModelIO) -> IOSpec | None:
    """The input a table fills by position: a model's only input, when it is a tensor of
    shape ``[-1]`` or ``[-1, width]``; None for every other model."""
    if io.layout is not Layout.TENSORS or len(io.inputs) != 1:
        return None
    spec = io.inputs[0]
    return spec if len(spec.shape) in (1, 2) else None
