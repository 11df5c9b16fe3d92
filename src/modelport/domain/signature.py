"""Input and output signatures: what a model accepts and returns.

A signature is inferred from a sample (a DataFrame gives named, typed columns; an
ndarray gives a tensor with a variable batch dimension) and stored in the package.
``Signature.validate`` accepts what the model accepts and raises
``InvalidInputError`` naming the column or tensor otherwise.

Conversions ``validate`` makes (everything else is refused):

============================  =========================================================
received -> expected          rule
============================  =========================================================
int/uint -> float32/float64   accepted when every value converts exactly
                              (|v| <= 2**24 for float32, 2**53 for float64)
float64 -> float32            accepted when every finite value is in float32's range
float -> int                  accepted when every value is a whole number in range
int -> narrower/wider int     accepted when every value fits the expected type
text -> datetime              accepted when every value parses as a date/time
text/number -> category       accepted when every value is one of the categories
============================  =========================================================

Columns are matched by name and reordered to the signature's order; columns the
signature does not know are dropped; a missing column is an error unless it is
optional (``required=False``), in which case it is filled with missing values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import InvalidInputError

if TYPE_CHECKING:  # pandas is imported only where a table is really handled
    import pandas as pd

NUMERIC_DTYPES = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)  # fmt: skip
COLUMN_DTYPES = ("bool", *NUMERIC_DTYPES, "string", "datetime", "category")
TENSOR_DTYPES = ("bool", *NUMERIC_DTYPES, "string")
_EXACT_INT_LIMIT = {"float16": 2**11, "float32": 2**24, "float64": 2**53}
_DEFAULT_OUTPUT_NAME = "predictions"


@dataclass(frozen=True)
class ColumnSpec:
    """One named column: its type, whether it may hold missing values, whether it may be
    left out, and for ``category`` columns the allowed values."""

    name: str
    dtype: str
    nullable: bool = False
    required: bool = True
    categories: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.nullable:
            data["nullable"] = True
        if not self.required:
            data["required"] = False
        if self.categories is not None:
            data["categories"] = list(self.categories)
        return data


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: element type and shape, where -1 is any size."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ColumnSchema:
    """A table of named, typed columns."""

    columns: tuple[ColumnSpec, ...]
    kind: str = field(default="columns", init=False)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "columns", "columns": [column.to_dict() for column in self.columns]}

    def validate(self, batch: Any) -> pd.DataFrame:
        """Return ``batch`` as a DataFrame with the signature's columns, order and types."""
        from modelport.domain.tables import validate_columns

        return validate_columns(self, batch)


@dataclass(frozen=True)
class TensorSchema:
    """One or more named tensors."""

    tensors: tuple[TensorSpec, ...]
    kind: str = field(default="tensors", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tensors", "tensors": [tensor.to_dict() for tensor in self.tensors]}

    def validate(self, batch: Any) -> np.ndarray | dict[str, np.ndarray]:
        """Return one ndarray (single tensor) or a dict of ndarrays, checked and cast."""
        if len(self.tensors) == 1:
            spec = self.tensors[0]
            if isinstance(batch, Mapping) and spec.name in batch:
                batch = batch[spec.name]
            return _coerce_tensor(batch, spec)
        if not isinstance(batch, Mapping):
            names = ", ".join(repr(t.name) for t in self.tensors)
            raise InvalidInputError(
                f"the model takes the tensors {names}: pass a mapping of name to array",
                expected="mapping of tensor name to array",
                received=type(batch).__name__,
            )
        for spec in self.tensors:
            if spec.name not in batch:
                raise InvalidInputError(
                    f"missing input tensor {spec.name!r}",
                    field=spec.name,
                    expected=_describe_tensor(spec),
                    received="no such tensor",
                )
        return {spec.name: _coerce_tensor(batch[spec.name], spec) for spec in self.tensors}


Schema = ColumnSchema | TensorSchema


@dataclass(frozen=True)
class Signature:
    """A model's input schema and, when known, its output schema."""

    inputs: Schema
    outputs: Schema | None = None

    def validate(self, batch: Any) -> Any:
        """Check ``batch`` against the inputs; return it in the form the model takes."""
        return self.inputs.validate(batch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "outputs": self.outputs.to_dict() if self.outputs is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        outputs = data.get("outputs")
        return cls(
            inputs=schema_from_dict(data["inputs"]),
            outputs=schema_from_dict(outputs) if outputs is not None else None,
        )

    @classmethod
    def infer(cls, sample: Any, predictions: Any = None) -> Signature:
        """Infer inputs from ``sample`` and, when given, outputs from ``predictions``."""
        from modelport.domain.inference import infer_schema

        if predictions is None:
            return cls(inputs=infer_schema(sample))
        outputs = infer_schema(predictions, default_name=_DEFAULT_OUTPUT_NAME)
        return cls(inputs=infer_schema(sample), outputs=outputs)


def schema_from_dict(data: Mapping[str, Any]) -> Schema:
    """Rebuild a schema from its ``to_dict`` form."""
    if data.get("kind") == "columns":
        return ColumnSchema(
            tuple(
                ColumnSpec(
                    name=str(c["name"]),
                    dtype=_checked_dtype(c["dtype"], COLUMN_DTYPES),
                    nullable=bool(c.get("nullable", False)),
                    required=bool(c.get("required", True)),
                    categories=tuple(c["categories"]) if c.get("categories") is not None else None,
                )
                for c in data["columns"]
            )
        )
    if data.get("kind") == "tensors":
        return TensorSchema(
            tuple(
                TensorSpec(
                    name=str(t["name"]),
                    dtype=_checked_dtype(t["dtype"], TENSOR_DTYPES),
                    shape=tuple(int(d) for d in t["shape"]),
                )
                for t in data["tensors"]
            )
        )
    raise ValueError(f"unknown schema kind {data.get('kind')!r}; expected 'columns' or 'tensors'")


def _checked_dtype(dtype: Any, allowed: Sequence[str]) -> str:
    if dtype not in allowed:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(allowed)}")
    return str(dtype)


def cast_numeric(values: np.ndarray, dtype: str, name: str, *, nullable: bool = True) -> np.ndarray:
    """Cast a numeric array to ``dtype`` by the rules in this module's docstring."""
    target = np.dtype(dtype)
    source = values.dtype
    if source == target:
        return values
    if source.kind == "b":
        raise _cast_error(name, dtype, "bool")
    if target.kind == "f":
        return _to_float(values, target, name)
    if target.kind in "iu":
        return _to_int(values, target, name, nullable=nullable)
    raise _cast_error(name, dtype, str(source))


def _to_float(values: np.ndarray, target: np.dtype[Any], name: str) -> np.ndarray:
    if values.dtype.kind in "iu":
        limit = _EXACT_INT_LIMIT[target.name]
        if values.size and np.abs(values.astype("float64")).max() > limit:
            raise _cast_error(
                name, target.name, str(values.dtype), f"integers beyond {limit} lose precision"
            )
        return values.astype(target)
    if values.dtype.kind == "f" and target.itemsize < values.dtype.itemsize:
        finite = values[np.isfinite(values)]
        if finite.size and np.abs(finite).max() > np.finfo(target).max:
            raise _cast_error(name, target.name, str(values.dtype), "values out of range")
        return values.astype(target)
    if values.dtype.kind == "f":
        return values.astype(target)
    raise _cast_error(name, target.name, str(values.dtype))


def _to_int(values: np.ndarray, target: np.dtype[Any], name: str, *, nullable: bool) -> np.ndarray:
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            if nullable:  # whole numbers with gaps stay float, as pandas keeps them
                return values
            raise _cast_error(name, target.name, "missing values")
        if not np.all(np.isfinite(values)) or not np.all(np.mod(values, 1) == 0):
            raise _cast_error(name, target.name, str(values.dtype), "values are not whole numbers")
    elif values.dtype.kind not in "iu":
        raise _cast_error(name, target.name, str(values.dtype))
    info = np.iinfo(target)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise _cast_error(
            name, target.name, str(values.dtype), f"values outside [{info.min}, {info.max}]"
        )
    return values.astype(target)


def _cast_error(name: str, expected: str, received: str, detail: str = "") -> InvalidInputError:
    message = f"{name!r} expects {expected}, got {received}"
    return InvalidInputError(
        f"{message}{': ' + detail if detail else ''}",
        field=name,
        expected=expected,
        received=received,
    )


def _describe_tensor(spec: TensorSpec) -> str:
    return f"{spec.dtype} of shape {list(spec.shape)}"


def _coerce_tensor(batch: Any, spec: TensorSpec) -> np.ndarray:
    if type(batch).__module__.startswith("pandas"):  # a DataFrame of numbers
        batch = batch.to_numpy()
    try:
        array = np.asarray(batch)
    except ValueError:
        raise InvalidInputError(
            f"tensor {spec.name!r} is ragged: every row must have the same shape",
            field=spec.name,
            expected=_describe_tensor(spec),
            received="rows of different lengths",
        ) from None
    shape_ok = array.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    )
    if not shape_ok:
        raise InvalidInputError(
            f"tensor {spec.name!r} expects shape {list(spec.shape)} (-1 is any size), "
            f"got {list(array.shape)}",
            field=spec.name,
            expected=_describe_tensor(spec),
            received=f"shape {list(array.shape)}",
        )
    if array.shape[0] == 0:
        raise InvalidInputError(
            "the batch has no rows", field=spec.name, expected="at least one row"
        )
    return _cast_tensor(array, spec)


def _cast_tensor(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype == "string":
        if array.dtype.kind in "OUS":
            return array
        raise _cast_error(spec.name, "string", str(array.dtype))
    if spec.dtype == "bool":
        if array.dtype.kind == "b":
            return array
        raise _cast_error(spec.name, "bool", str(array.dtype))
    if array.dtype.kind in "OUS":
        raise _cast_error(spec.name, spec.dtype, "text")
    return cast_numeric(array, spec.dtype, spec.name, nullable=False)


def normalize_sample(sample: Any) -> Any:
    """A sample as a DataFrame, an ndarray or a dict of ndarrays (see ``domain.inference``)."""
    from modelport.domain.inference import normalize_sample as normalize

    return normalize(sample)


def infer_schema(data: Any, default_name: str = "input") -> Schema:
    """Infer a schema from a sample or predictions (see ``domain.inference``)."""
    from modelport.domain.inference import infer_schema as infer

    return infer(data, default_name)
