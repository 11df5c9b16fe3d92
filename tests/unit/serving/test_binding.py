"""Turning decoded request arrays into batches, for each layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelport.errors import InvalidInputError
from modelport.package.sample_schema import infer_signature
from modelport.serving.binding import InputBinder, Tensor
from modelport.serving.interface import Layout, ModelIO


def io_for(sample: object, *, proba: bool = False) -> ModelIO:
    return ModelIO.from_signature(infer_signature(sample), supports_proba=proba, n_classes=None)


NUMERIC = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4], "c": [0.5, np.nan]})
MIXED = pd.DataFrame(
    {
        "age": [30, 40],
        "city": ["rome", "oslo"],
        "member": [True, False],
        "plan": pd.Categorical(["x", "y"]),
        "since": pd.to_datetime(["2020-01-01", "2021-01-01"]),
    }
)


def test_numeric_tables_are_one_matrix_input() -> None:
    io = io_for(NUMERIC, proba=True)
    assert io.layout is Layout.MATRIX
    assert [s.to_dict() for s in io.inputs] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 3]}
    ]
    assert [s.name for s in io.outputs] == ["predictions", "probabilities"]


def test_mixed_tables_are_one_input_per_column() -> None:
    io = io_for(MIXED)
    assert io.layout is Layout.COLUMNS
    assert [(s.name, s.datatype) for s in io.inputs] == [
        ("age", "INT64"),
        ("city", "BYTES"),
        ("member", "BOOL"),
        ("plan", "BYTES"),
        ("since", "BYTES"),
    ]


def test_matrix_from_a_typed_tensor_and_from_columns() -> None:
    binder = InputBinder(io_for(NUMERIC))
    x = np.array([[1.0, 2.0, 3.0]])
    assert binder.bind_named({"input": Tensor(x, "FP64")}).batch["input"].tolist() == [[1, 2, 3]]
    widened = binder.bind_named({"input": Tensor(x.astype("float32"), "FP32")})
    assert widened.batch["input"].dtype == np.float64
    columns = {
        n: Tensor(np.array([v]), "FP64") for n, v in zip("abc", (1.0, 2.0, 3.0), strict=True)
    }
    assert binder.bind_named(columns).batch["input"].tolist() == [[1.0, 2.0, 3.0]]


def test_lossy_datatypes_are_refused() -> None:
    binder = InputBinder(
        ModelIO.from_signature(
            infer_signature(np.zeros((2, 3), "float32")), supports_proba=False, n_classes=None
        )
    )
    with pytest.raises(InvalidInputError, match="has datatype FP32; got FP64"):
        binder.bind_named({"input": Tensor(np.zeros((1, 3)), "FP64")})


def test_untyped_json_numbers_follow_the_signature_rules() -> None:
    binder = InputBinder(io_for(NUMERIC))
    rows = np.array([[1, 2, 3], [4, 5, None]], dtype=object)
    bound = binder.bind_table(["c", "b", "a"], rows)  # by name, any order
    assert bound.rows == 2
    assert bound.batch["input"][0].tolist() == [3.0, 2.0, 1.0]
    assert np.isnan(bound.batch["input"][1, 0])  # c is nullable
    with pytest.raises(InvalidInputError, match="'b' expects a number, got 'x'"):
        binder.bind_table(["a", "b", "c"], np.array([[1, "x", 2]], dtype=object))


def test_nan_only_where_the_signature_allows_it() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    binder = InputBinder(io_for(frame))
    with pytest.raises(InvalidInputError, match="non-finite value"):
        binder.bind_named({"input": Tensor(np.array([[np.nan, 1.0]]), "FP64")})
    with pytest.raises(InvalidInputError, match="non-finite value"):
        binder.bind_named({"input": Tensor(np.array([[np.inf, 1.0]]), "FP64")})
    relaxed = InputBinder(io_for(frame), allow_non_finite=True)
    assert relaxed.bind_named({"input": Tensor(np.array([[np.inf, 1.0]]), "FP64")}).rows == 1


def test_columns_layout_converts_each_kind() -> None:
    binder = InputBinder(io_for(MIXED))
    bound = binder.bind_named(
        {
            "age": Tensor(np.array([5])),
            "city": Tensor(np.array([b"paris"], dtype=object), "BYTES"),
            "member": Tensor(np.array([True])),
            "plan": Tensor(np.array(["y"], dtype=object)),
            "since": Tensor(np.array(["2022-05-01"], dtype=object)),
        }
    )
    assert bound.batch["city"].tolist() == ["paris"]
    assert bound.batch["since"].dtype == np.dtype("datetime64[ns]")
    with pytest.raises(InvalidInputError, match="outside its categories: 'z'"):
        binder.bind_table(
            list(MIXED.columns), np.array([[1, "a", True, "z", "2020-01-01"]], dtype=object)
        )
    with pytest.raises(InvalidInputError, match="missing input 'city'"):
        binder.bind_named({"age": Tensor(np.array([5]))})
    with pytest.raises(InvalidInputError, match="expects UTF-8 text"):
        binder.bind_named({**{n: Tensor(np.array([v], dtype=object)) for n, v in
                              zip(MIXED.columns, (1, "a", True, "x", "2020-01-01"), strict=True)},
                           "city": Tensor(np.array([b"\xff"], dtype=object), "BYTES")})  # fmt: skip


def test_unknown_inputs_and_row_mismatches_are_named() -> None:
    binder = InputBinder(io_for(MIXED))
    with pytest.raises(InvalidInputError, match="unknown input 'colour'"):
        binder.bind_named({"colour": Tensor(np.array([1]))})
    values = {
        n: Tensor(np.array([v], dtype=object))
        for n, v in zip(MIXED.columns, (1, "a", True, "x", "2020-01-01"), strict=True)
    }
    values["age"] = Tensor(np.array([1, 2]))
    with pytest.raises(InvalidInputError, match="different numbers of rows"):
        binder.bind_named(values)


def test_tensor_models_check_shape_and_take_unnamed_arrays() -> None:
    io = ModelIO.from_signature(
        infer_signature(np.zeros((4, 3, 2), "float32")), supports_proba=False, n_classes=None
    )
    binder = InputBinder(io)
    assert binder.bind_array(np.zeros((5, 3, 2))).rows == 5
    with pytest.raises(InvalidInputError, match=r"expects shape \[-1, 3, 2\]"):
        binder.bind_named({"input": Tensor(np.zeros((5, 2, 2), "float32"), "FP32")})


def test_positional_rows_must_match_the_column_count() -> None:
    binder = InputBinder(io_for(NUMERIC))
    assert binder.bind_array(np.array([[1.0, 2.0, 3.0]])).rows == 1
    with pytest.raises(InvalidInputError, match="rows must have 3 values"):
        binder.bind_array(np.array([[1.0, 2.0]]))
    with pytest.raises(InvalidInputError, match="no rows"):
        binder.bind_table(["a", "b", "c"], np.zeros((0, 3)))


def test_numeric_tables_bind_in_one_piece_in_any_column_order() -> None:
    binder = InputBinder(io_for(NUMERIC.fillna(0.0)))  # no nullable column
    rows = np.array([[1.0, 3.0, 0.5], [2.0, 4.0, 0.25]])
    in_order = binder.bind_table(["a", "b", "c"], rows).batch["input"]
    shuffled = binder.bind_table(["c", "a", "b"], rows[:, [2, 0, 1]]).batch["input"]
    np.testing.assert_array_equal(in_order, rows)
    np.testing.assert_array_equal(shuffled, rows)
    integers = binder.bind_table(["a", "b", "c"], np.array([[1, 3, 0], [2, 4, 1]]))
    assert integers.batch["input"].dtype == np.float64
    # A refused value is still reported by its column's name.
    with pytest.raises(InvalidInputError, match="non-finite value in input 'b'"):
        binder.bind_table(["a", "b", "c"], np.array([[1.0, np.inf, 0.5]]))
