"""Inferring a signature from a sample: columns from tables, tensors from arrays."""

import numpy as np
import pandas as pd
import pytest

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema, TensorSpec
from modelport.errors import InvalidSampleError
from modelport.package.sample_schema import infer_schema, infer_signature, normalize_sample


@pytest.fixture
def frame(mixed_frame: pd.DataFrame) -> pd.DataFrame:
    return mixed_frame


def test_infer_columns_with_types_nullability_and_categories(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    assert isinstance(schema, ColumnSchema)
    assert schema.columns == (
        ColumnSpec("age", "int64"),
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("city", "string"),
        ColumnSpec("member", "bool"),
        ColumnSpec("plan", "category", categories=("a", "b")),
        ColumnSpec("since", "datetime"),
    )


def test_infer_tensor_with_variable_batch_dimension() -> None:
    schema = infer_schema(np.zeros((4, 3, 2), dtype="float32"))
    assert schema == TensorSchema((TensorSpec("input", "float32", (-1, 3, 2)),))


def test_infer_named_tensors_from_a_dict() -> None:
    schema = infer_schema({"ids": np.zeros((2, 5), "int64"), "mask": np.ones((2, 5), bool)})
    assert [t.name for t in schema.tensors] == ["ids", "mask"]  # type: ignore[union-attr]


def test_records_and_dicts_become_tables() -> None:
    assert isinstance(normalize_sample([{"a": 1}, {"a": 2}]), pd.DataFrame)
    assert isinstance(normalize_sample({"a": [1, 2]}), pd.DataFrame)


@pytest.mark.parametrize("empty", [pd.DataFrame({"a": []}), np.zeros((0, 3)), []])
def test_a_sample_without_rows_is_refused(empty: object) -> None:
    with pytest.raises(InvalidSampleError, match="no rows"):
        normalize_sample(empty)


def test_an_unknown_sample_kind_is_refused() -> None:
    with pytest.raises(InvalidSampleError, match="cannot use a object"):
        normalize_sample(object())


def test_mixed_column_is_refused_at_inference() -> None:
    with pytest.raises(InvalidSampleError, match="'x' holds values of mixed"):
        infer_schema(pd.DataFrame({"x": [1, "a"]}))


def test_signature_round_trips_through_dict(frame: pd.DataFrame) -> None:
    signature = infer_signature(frame, np.array([0, 1, 1]))
    assert Signature.from_dict(signature.to_dict()) == signature
